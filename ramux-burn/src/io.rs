//! Writing an image to a block device with `O_DIRECT` and reading it back through a fresh
//! `O_DIRECT` descriptor (docs/burn.md, "Write and verify").

use crate::policy::Refusal;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Bytes per write/read request (what dd bs=4M and Fedora Media Writer use, roughly).
pub const CHUNK: usize = 4 << 20;
/// Buffer and offset alignment for `O_DIRECT`: a page, which covers 512 and 4096 byte sectors.
pub const ALIGN: usize = 4096;

nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
nix::ioctl_read_bad!(blksszget, 0x1268, libc::c_int);

/// Which pass a [`Progress`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Write,
    Verify,
}

/// Progress of one pass.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
    pub elapsed: Duration,
}

impl Progress {
    /// Bytes per second so far.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.done as f64 / s
        } else {
            0.0
        }
    }
}

/// Why a burn did not finish with a verified copy; [`BurnError::exit_code`] maps them.
#[derive(Debug)]
pub enum BurnError {
    /// Exit 2: the device is not written (nothing was touched).
    Refused(Vec<Refusal>),
    /// Exit 3: an I/O error, with what was being done.
    Io(String, io::Error),
    /// Exit 4: the read-back differs.
    Mismatch { expected: String, actual: String },
    /// Exit 130: SIGINT between two blocks; the device is incomplete.
    Interrupted { phase: Phase, done: u64, total: u64 },
    /// Exit 3: an external tool (xorriso) failed.
    Tool(String),
    /// Exit 2: not confirmed (no terminal without --yes, or the wrong name typed).
    NotConfirmed(String),
    /// Exit 2: a `--cd` target that is not an optical drive or a pseudo-drive file.
    Unsuitable(String),
}

impl BurnError {
    pub fn exit_code(&self) -> i32 {
        match self {
            BurnError::Refused(_) | BurnError::NotConfirmed(_) | BurnError::Unsuitable(_) => 2,
            BurnError::Io(..) | BurnError::Tool(_) => 3,
            BurnError::Mismatch { .. } => 4,
            BurnError::Interrupted { .. } => 130,
        }
    }
}

impl std::fmt::Display for BurnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BurnError::Refused(r) => {
                let m: Vec<String> = r.iter().map(|r| r.message()).collect();
                write!(f, "refused: {}", m.join("; "))
            }
            BurnError::Io(what, e) => write!(f, "{what}: {e}"),
            BurnError::Mismatch { expected, actual } => write!(
                f,
                "verify FAILED: the device reads back sha256 {actual}, the image is {expected}; do not use this stick"
            ),
            BurnError::Interrupted { phase, done, total } => write!(
                f,
                "interrupted during {} after {done} of {total} bytes: the device is INCOMPLETE and will not boot correctly; burn it again",
                match phase {
                    Phase::Write => "the write",
                    Phase::Verify => "the verify (the write itself had finished)",
                }
            ),
            BurnError::Tool(m) | BurnError::NotConfirmed(m) | BurnError::Unsuitable(m) => {
                write!(f, "{m}")
            }
        }
    }
}

impl std::error::Error for BurnError {}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BurnError {
    let what = what.into();
    move |e| BurnError::Io(what, e)
}

/// A buffer whose start is [`ALIGN`]-aligned, without unsafe code: a `Vec` with slack and an
/// offset into it.
pub struct AlignedBuf {
    v: Vec<u8>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn new(len: usize) -> AlignedBuf {
        let v = vec![0u8; len + ALIGN];
        let off = v.as_ptr().align_offset(ALIGN);
        AlignedBuf { v, off, len }
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.v[self.off..self.off + self.len]
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.v[self.off..self.off + self.len]
    }
}

/// The size of a block device (BLKGETSIZE64), or of a regular file.
pub fn device_size(f: &File) -> io::Result<u64> {
    let md = f.metadata()?;
    if !std::os::unix::fs::FileTypeExt::is_block_device(&md.file_type()) {
        return Ok(md.len());
    }
    let mut n = 0u64;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points to `n`.
    unsafe { blkgetsize64(f.as_raw_fd(), &mut n) }.map_err(io::Error::from)?;
    Ok(n)
}

/// The logical block size (BLKSSZGET): the unit O_DIRECT lengths and offsets must be
/// multiples of. 512 for a regular file.
pub fn logical_block(f: &File) -> u64 {
    let mut n: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int through the pointer, which points to `n`.
    match unsafe { blksszget(f.as_raw_fd(), &mut n) } {
        Ok(_) if n > 0 => n as u64,
        _ => 512,
    }
}

/// Open the target for writing: `O_WRONLY|O_EXCL|O_DIRECT`. `EBUSY` (mounted, swap, held, or
/// another exclusive opener) becomes the [`Refusal::InUse`] refusal.
pub fn open_target(dev: &Path) -> Result<File, BurnError> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_EXCL | libc::O_DIRECT | libc::O_CLOEXEC)
        .open(dev)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                BurnError::Refused(vec![Refusal::InUse {
                    error: e.to_string(),
                }])
            } else {
                BurnError::Io(format!("open {} O_EXCL|O_DIRECT", dev.display()), e)
            }
        })
}

/// Is the device free (an `O_RDONLY|O_EXCL` open succeeds)? Used by `--list` on the machine.
pub fn probe_exclusive(dev: &Path) -> Result<(), io::Error> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL | libc::O_CLOEXEC)
        .open(dev)
        .map(drop)
}

/// What [`write_image`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    pub bytes: u64,
    /// sha256 of the image bytes as they were read and written.
    pub sha256: [u8; 32],
    pub elapsed: Duration,
    /// Bytes written without O_DIRECT at the end (image length not a multiple of the
    /// logical block size).
    pub tail_bytes: u64,
}

fn fill(src: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Write `image` to `dev` (opened by [`open_target`]) from offset 0, then fsync. The whole
/// blocks go out with O_DIRECT from an aligned buffer; a last partial block (an image length
/// that is not a multiple of the logical block size) is written as exactly its bytes with
/// O_DIRECT cleared on the descriptor, so nothing past the image is touched. `stop` is checked
/// between blocks.
pub fn write_image(
    image: &Path,
    dev: &File,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Written, BurnError> {
    let mut src = File::open(image).map_err(io_err(format!("open {}", image.display())))?;
    let total = src
        .metadata()
        .map_err(io_err(format!("stat {}", image.display())))?
        .len();
    let cap = device_size(dev).map_err(io_err("device size (BLKGETSIZE64)"))?;
    if cap < total {
        return Err(BurnError::Refused(vec![Refusal::TooSmall {
            size_bytes: cap,
            image_bytes: total,
        }]));
    }
    let lbs = logical_block(dev);
    let mut buf = AlignedBuf::new(CHUNK);
    let mut hash = Sha256::new();
    let start = Instant::now();
    let mut done = 0u64;
    let mut tail: Vec<u8> = Vec::new();
    while done < total {
        if stop.load(Ordering::SeqCst) {
            let _ = dev.sync_all();
            return Err(BurnError::Interrupted {
                phase: Phase::Write,
                done,
                total,
            });
        }
        let want = (total - done).min(CHUNK as u64) as usize;
        let b = &mut buf.as_mut_slice()[..want];
        let n = fill(&mut src, b).map_err(io_err(format!("read {}", image.display())))?;
        if n < want {
            return Err(BurnError::Io(
                format!("read {}", image.display()),
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the image shrank while writing",
                ),
            ));
        }
        let direct = n - n % lbs as usize;
        let data = &b[..n];
        // The hash of this block runs beside its write (a scoped thread: both only read it).
        let written = std::thread::scope(|s| {
            let h = s.spawn(|| hash.update(data));
            let r = if direct > 0 {
                dev.write_all_at(&data[..direct], done)
            } else {
                Ok(())
            };
            h.join().expect("hash thread");
            r
        });
        written.map_err(io_err(format!("write at offset {done}")))?;
        if direct < n {
            // Only possible in the last chunk: keep the tail for the buffered write below.
            tail.extend_from_slice(&b[direct..n]);
        }
        done += direct as u64;
        progress(&Progress {
            phase: Phase::Write,
            done,
            total,
            elapsed: start.elapsed(),
        });
        if !tail.is_empty() {
            break;
        }
    }
    let tail_bytes = tail.len() as u64;
    if !tail.is_empty() {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let fl = fcntl(dev.as_raw_fd(), FcntlArg::F_GETFL).map_err(|e| {
            BurnError::Io(
                "fcntl F_GETFL".into(),
                io::Error::from_raw_os_error(e as i32),
            )
        })?;
        let fl = OFlag::from_bits_truncate(fl) & !OFlag::O_DIRECT;
        fcntl(dev.as_raw_fd(), FcntlArg::F_SETFL(fl)).map_err(|e| {
            BurnError::Io(
                "fcntl clear O_DIRECT".into(),
                io::Error::from_raw_os_error(e as i32),
            )
        })?;
        dev.write_all_at(&tail, done).map_err(io_err(format!(
            "write the last {tail_bytes} bytes at {done}"
        )))?;
        done += tail_bytes;
    }
    dev.sync_all().map_err(io_err("fsync"))?;
    let elapsed = start.elapsed();
    progress(&Progress {
        phase: Phase::Write,
        done,
        total,
        elapsed,
    });
    Ok(Written {
        bytes: total,
        sha256: hash.finalize().into(),
        elapsed,
        tail_bytes,
    })
}

/// sha256 of the first `len` bytes of `dev`, read through a NEW descriptor opened with
/// `O_RDONLY|O_DIRECT`, so neither the page cache nor the writer's descriptor can answer for
/// the device. Reads are rounded up to the logical block size; only `len` bytes are hashed.
/// A file system that refuses O_DIRECT (tmpfs: EINVAL) is read buffered after
/// `posix_fadvise(DONTNEED)`; that only happens for `--cd` pseudo-drive files.
pub fn read_back_sha256(
    dev: &Path,
    len: u64,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<[u8; 32], BurnError> {
    let open = |flags| {
        OpenOptions::new()
            .read(true)
            .custom_flags(flags | libc::O_CLOEXEC)
            .open(dev)
    };
    let (f, direct) = match open(libc::O_DIRECT) {
        Ok(f) => (f, true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let f = open(0).map_err(io_err(format!("open {}", dev.display())))?;
            let _ = nix::fcntl::posix_fadvise(
                f.as_raw_fd(),
                0,
                0,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            );
            (f, false)
        }
        Err(e) => {
            return Err(BurnError::Io(
                format!("open {} O_RDONLY|O_DIRECT", dev.display()),
                e,
            ))
        }
    };
    let lbs = if direct { logical_block(&f) } else { 1 };
    // Two buffers: block i is hashed while block i+1 is read.
    let mut bufs = [AlignedBuf::new(CHUNK), AlignedBuf::new(CHUNK)];
    let mut cur = 0usize;
    let mut pending = 0usize;
    let mut hash = Sha256::new();
    let start = Instant::now();
    let mut done = 0u64;
    while done < len {
        if stop.load(Ordering::SeqCst) {
            return Err(BurnError::Interrupted {
                phase: Phase::Verify,
                done,
                total: len,
            });
        }
        let left = len - done;
        let want = left.div_ceil(lbs) * lbs;
        let want = want.min(CHUNK as u64) as usize;
        let (first, second) = bufs.split_at_mut(1);
        let (rd, hs) = if cur == 0 {
            (&mut first[0], &second[0])
        } else {
            (&mut second[0], &first[0])
        };
        let hslice = &hs.as_slice()[..pending];
        let read = std::thread::scope(|s| {
            let h = s.spawn(|| hash.update(hslice));
            let mut got = 0usize;
            let mut r = Ok(());
            while got < want {
                match f.read_at(&mut rd.as_mut_slice()[got..want], done + got as u64) {
                    Ok(0) => break,
                    Ok(k) => got += k,
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                }
            }
            h.join().expect("hash thread");
            r.map(|_| got)
        });
        let got = read.map_err(io_err(format!("read back at offset {done}")))?;
        let use_ = (got as u64).min(left);
        if use_ == 0 {
            return Err(BurnError::Io(
                format!("read back at offset {done}"),
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "device ended before the image",
                ),
            ));
        }
        pending = use_ as usize;
        cur = 1 - cur;
        done += use_;
        progress(&Progress {
            phase: Phase::Verify,
            done,
            total: len,
            elapsed: start.elapsed(),
        });
    }
    hash.update(&bufs[1 - cur].as_slice()[..pending]);
    Ok(hash.finalize().into())
}

/// Verify `dev` against what [`write_image`] reported ([`read_back_sha256`] and compare).
pub fn verify_device(
    dev: &Path,
    written: &Written,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Duration, BurnError> {
    let start = Instant::now();
    let got = read_back_sha256(dev, written.bytes, stop, progress)?;
    if got != written.sha256 {
        return Err(BurnError::Mismatch {
            expected: hex(&written.sha256),
            actual: hex(&got),
        });
    }
    Ok(start.elapsed())
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// sha256 of a whole file.
pub fn file_sha256(p: &Path) -> io::Result<[u8; 32]> {
    let mut f = File::open(p)?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h)?;
    Ok(h.finalize().into())
}
