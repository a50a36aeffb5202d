//! Per-port, per-direction impairments (wirefilter's set: loss, duplication, delay with
//! jitter, bandwidth, MTU, bit-error noise) as a pure FIFO queue model driven by an
//! explicit `now_us`, so tests are deterministic and the event loop only asks for the next
//! deadline.

use crate::core::DropReason;
use std::collections::VecDeque;

/// Configuration of one direction. All zero = no impairment (fast path).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ImpairCfg {
    /// Loss probability in percent.
    pub loss: f64,
    /// Duplication probability in percent (each extra copy with this probability).
    pub dup: f64,
    /// Added delay, milliseconds.
    pub delay_ms: f64,
    /// Uniform jitter +- this many milliseconds around `delay_ms`.
    pub jitter_ms: f64,
    /// Bottleneck bandwidth in bytes/s (0 = unlimited).
    pub bandwidth: f64,
    /// Frames longer than this are dropped (0 = no limit).
    pub mtu: usize,
    /// Flipped bits per megabyte (2^20 bytes), wirefilter's "noise".
    pub noise: f64,
}

impl ImpairCfg {
    pub fn is_none(&self) -> bool {
        *self == ImpairCfg::default()
    }

    /// Set one key from console syntax: `loss 5`, `dup 1`, `delay 20+5`, `bandwidth 1M`,
    /// `mtu 1400`, `noise 100` (alias `corrupt`), `clear`. K/M/G multiply by 2^10/2^20/2^30
    /// like wirefilter.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        if key == "clear" {
            *self = ImpairCfg::default();
            return Ok(());
        }
        let (base, plus) = match value.split_once('+') {
            Some((a, b)) => (parse_num(a)?, parse_num(b)?),
            None => (parse_num(value)?, 0.0),
        };
        if base < 0.0 || plus < 0.0 {
            return Err(format!("negative value {value:?}"));
        }
        match key {
            "loss" => self.loss = base.min(100.0),
            "dup" => self.dup = base.min(99.0),
            "delay" => {
                self.delay_ms = base;
                self.jitter_ms = plus.min(base);
            }
            "bandwidth" | "band" => self.bandwidth = base,
            "mtu" => self.mtu = base as usize,
            "noise" | "corrupt" => self.noise = base,
            _ => {
                return Err(format!(
                    "unknown impairment {key:?} (loss, dup, delay, bandwidth, mtu, noise, clear)"
                ))
            }
        }
        Ok(())
    }
}

fn parse_num(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1024.0),
        Some('M' | 'm') => (&s[..s.len() - 1], 1024.0 * 1024.0),
        Some('G' | 'g') => (&s[..s.len() - 1], 1024.0 * 1024.0 * 1024.0),
        _ => (s, 1.0),
    };
    num.parse::<f64>()
        .map(|v| v * mult)
        .map_err(|_| format!("not a number: {s:?}"))
}

/// Small deterministic PRNG (xorshift64*): impairments need speed and reproducibility,
/// not cryptographic quality.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One direction's queue.
#[derive(Debug, Clone)]
pub struct Impairer {
    pub cfg: ImpairCfg,
    rng: Rng,
    queue: VecDeque<(u64, Vec<u8>)>,
    queued_bytes: usize,
    /// Memory bound of the delay queue.
    pub capacity_bytes: usize,
    bw_free_at_us: u64,
    last_due_us: u64,
}

impl Impairer {
    pub fn new(cfg: ImpairCfg, seed: u64) -> Self {
        Impairer {
            cfg,
            rng: Rng::new(seed),
            queue: VecDeque::new(),
            queued_bytes: 0,
            capacity_bytes: 4 << 20,
            bw_free_at_us: 0,
            last_due_us: 0,
        }
    }

    /// Offer a frame at `now_us`. Ok(copies queued) or the drop reason.
    pub fn push(&mut self, frame: &[u8], now_us: u64) -> Result<usize, DropReason> {
        let c = self.cfg;
        if c.mtu > 0 && frame.len() > c.mtu {
            return Err(DropReason::ImpairMtu);
        }
        if c.loss > 0.0 && self.rng.unit() * 100.0 < c.loss {
            return Err(DropReason::ImpairLoss);
        }
        let mut copies = 1;
        while c.dup > 0.0 && copies < 16 && self.rng.unit() * 100.0 < c.dup {
            copies += 1;
        }
        for _ in 0..copies {
            if self.queued_bytes + frame.len() > self.capacity_bytes {
                return Err(DropReason::ImpairQueue);
            }
            let mut due = now_us;
            if c.bandwidth > 0.0 {
                let start = self.bw_free_at_us.max(now_us);
                self.bw_free_at_us = start + (frame.len() as f64 * 1e6 / c.bandwidth) as u64;
                due = self.bw_free_at_us;
            }
            if c.delay_ms > 0.0 {
                let j = if c.jitter_ms > 0.0 {
                    (self.rng.unit() * 2.0 - 1.0) * c.jitter_ms
                } else {
                    0.0
                };
                due += ((c.delay_ms + j).max(0.0) * 1000.0) as u64;
            }
            // FIFO: never deliver before a frame queued earlier (wirefilter's default).
            due = due.max(self.last_due_us);
            self.last_due_us = due;
            self.queued_bytes += frame.len();
            self.queue.push_back((due, frame.to_vec()));
        }
        Ok(copies)
    }

    /// Next frame whose time has come, with noise applied.
    pub fn pop_ready(&mut self, now_us: u64) -> Option<Vec<u8>> {
        if self.queue.front().is_none_or(|(due, _)| *due > now_us) {
            return None;
        }
        let (_, mut f) = self.queue.pop_front()?;
        self.queued_bytes -= f.len();
        if self.cfg.noise > 0.0 && !f.is_empty() {
            let expect = self.cfg.noise * f.len() as f64 / (1u64 << 20) as f64;
            let mut flips = expect.floor() as usize;
            if self.rng.unit() < expect.fract() {
                flips += 1;
            }
            for _ in 0..flips {
                let bit = (self.rng.next_u64() % (f.len() as u64 * 8)) as usize;
                f[bit / 8] ^= 1 << (bit % 8);
            }
        }
        Some(f)
    }

    /// When the head of the queue is due.
    pub fn next_due(&self) -> Option<u64> {
        self.queue.front().map(|(d, _)| *d)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kv: &[(&str, &str)]) -> ImpairCfg {
        let mut c = ImpairCfg::default();
        for (k, v) in kv {
            c.set(k, v).unwrap();
        }
        c
    }

    #[test]
    fn parse_values() {
        let c = cfg(&[("delay", "20+5"), ("bandwidth", "1M"), ("loss", "150")]);
        assert_eq!(c.delay_ms, 20.0);
        assert_eq!(c.jitter_ms, 5.0);
        assert_eq!(c.bandwidth, 1048576.0);
        assert_eq!(c.loss, 100.0);
        assert!(ImpairCfg::default().set("speed", "1").is_err());
        assert!(ImpairCfg::default().set("loss", "x").is_err());
        let mut c2 = c;
        c2.set("clear", "").unwrap();
        assert!(c2.is_none());
    }

    #[test]
    fn delay_and_fifo() {
        let mut q = Impairer::new(cfg(&[("delay", "10+5")]), 7);
        for i in 0..100u64 {
            q.push(&[i as u8; 60], i * 100).unwrap();
        }
        assert!(
            q.pop_ready(4_999).is_none(),
            "nothing before the minimum delay"
        );
        let mut got = Vec::new();
        let mut t = 0;
        while got.len() < 100 {
            t += 100;
            while let Some(f) = q.pop_ready(t) {
                got.push(f[0]);
            }
            assert!(t < 30_000);
        }
        assert_eq!(
            got,
            (0..100).collect::<Vec<u8>>(),
            "FIFO order kept under jitter"
        );
    }

    #[test]
    fn loss_rate_and_dup() {
        let mut q = Impairer::new(cfg(&[("loss", "30")]), 1);
        let lost = (0..10_000).filter(|_| q.push(&[0; 60], 0).is_err()).count();
        assert!((2_700..3_300).contains(&lost), "lost {lost}");
        let mut q = Impairer::new(cfg(&[("dup", "50")]), 2);
        let copies: usize = (0..10_000).map(|_| q.push(&[0; 60], 0).unwrap()).sum();
        // Geometric: mean copies = 1/(1-p) = 2.
        assert!((18_000..22_000).contains(&copies), "copies {copies}");
    }

    #[test]
    fn bandwidth_and_mtu() {
        // 1000 bytes/s: a 100-byte frame takes 100 ms.
        let mut q = Impairer::new(cfg(&[("bandwidth", "1000"), ("mtu", "1500")]), 3);
        q.push(&[0; 100], 0).unwrap();
        q.push(&[0; 100], 0).unwrap();
        assert_eq!(q.push(&[0; 1501], 0), Err(DropReason::ImpairMtu));
        assert!(q.pop_ready(99_999).is_none());
        assert!(q.pop_ready(100_000).is_some());
        assert!(q.pop_ready(150_000).is_none());
        assert!(q.pop_ready(200_000).is_some());
    }

    #[test]
    fn noise_flips_bits_and_capacity_bounds() {
        // 2^20 flips per MB = about 1 bit per byte... use 8 bits per 1 KB frame.
        let mut q = Impairer::new(cfg(&[("noise", "8192")]), 4);
        q.push(&[0; 1024], 0).unwrap();
        let f = q.pop_ready(0).unwrap();
        let ones: u32 = f.iter().map(|b| b.count_ones()).sum();
        assert!((1..=8).contains(&ones), "{ones} bits flipped");
        let mut q = Impairer::new(cfg(&[("delay", "1000")]), 5);
        q.capacity_bytes = 1000;
        assert!(q.push(&[0; 600], 0).is_ok());
        assert_eq!(q.push(&[0; 600], 0), Err(DropReason::ImpairQueue));
    }
}
