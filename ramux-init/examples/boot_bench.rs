//! Boot-time benchmark: ramux-init vs busybox init + an rcS script doing the same work (mounts,
//! the same module list, hostname, lo, sysctl -p, ip -batch, nft -f, machine-id, one respawned
//! service, ready line on tty0 and ttyS0), same kernel, same initramfs content, QEMU TCG with
//! virtio-rng. Measures kernel start -> ready line from /proc/uptime inside the guest.
//!
//! Run: `scripts/build && RAMUX_BIN_DIR=$PWD/target/x86_64-unknown-linux-gnu/release \
//!       cargo run --release -p ramux-init --example boot_bench -- [ROUNDS]`

#[path = "../tests/fixture/mod.rs"]
mod fixture;

use std::time::Duration;

use fixture::*;

const APPLIANCE: &str = r#"
profile = "bench"
role = "MASTER"
hostname = "ramux-bench"
kernel_release = "6.1.0-56-amd64"
modules = @MODULES@
[[service]]
name = "ticker"
argv = ["/bin/sleep", "3600"]
"#;

const READY: &str = "ramux: ready profile=bench role=MASTER host=ramux-bench";

fn etc() -> Vec<(&'static str, &'static str)> {
    vec![
        ("sysctl.conf", "net.ipv4.ip_forward = 1\n"),
        ("network.ip", "link set eth0 up\naddr add 192.0.2.1/24 dev eth0\n"),
        (
            "ruleset.nft",
            "table inet bench {\n chain input {\n  type filter hook input priority 0; policy accept;\n  iif lo accept\n }\n}\n",
        ),
    ]
}

fn busybox_init(modules: &[String]) -> Init {
    let rcs = format!(
        r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
exec >/dev/ttyS0 2>&1
for m in {mods}; do insmod /lib/modules/{KREL}/$m || echo "ramux: failed module $m"; done
hostname ramux-bench
ip link set lo up
sysctl -q -p /etc/ramux/sysctl.conf || echo "ramux: failed labwall: sysctl"
/sbin/ip -batch /etc/ramux/network.ip || echo "ramux: failed labwall: ip"
/usr/sbin/nft -f /etc/ramux/ruleset.nft || echo "ramux: failed labwall: nft"
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > /etc/machine-id
"#,
        mods = modules.join(" ")
    );
    let ready = format!(
        "#!/bin/sh\nfor t in /dev/tty0 /dev/ttyS0; do echo '{READY}' > $t; done\nread up rest < /proc/uptime\necho \"ramux: up $up s after kernel start\" > /dev/ttyS0\n"
    );
    Init::Busybox {
        inittab: "::sysinit:/etc/init.d/rcS\n::respawn:/bin/sleep 3600\n::once:/etc/init.d/ready\n"
            .into(),
        files: vec![
            ("/etc/init.d/rcS".into(), rcs),
            ("/etc/init.d/ready".into(), ready),
        ],
    }
}

/// Boots once and returns seconds after kernel start at the ready line.
fn boot_once(work: &std::path::Path, kernel: &std::path::Path, initrd: &std::path::Path) -> f64 {
    let mut vm = Vm::boot(work, kernel, initrd, true);
    vm.wait_for(READY, Duration::from_secs(180));
    vm.wait_for("ramux: up ", Duration::from_secs(10));
    let text = vm.text();
    let line = text.lines().find(|l| l.contains("ramux: up ")).unwrap();
    line.split("ramux: up ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let tree = kernel_tree();
    let modules = module_closure(&tree, MODULES);
    let toml = APPLIANCE.replace("@MODULES@", &format!("{modules:?}"));
    let w_ramux = workdir("bench-ramux");
    let w_busybox = workdir("bench-busybox");
    eprintln!("building images ...");
    let (kernel, initrd_ramux) = build_image_with(&w_ramux.0, &toml, &etc(), MODULES, &Init::Ramux);
    let (_, initrd_busybox) = build_image_with(
        &w_busybox.0,
        &toml,
        &etc(),
        MODULES,
        &busybox_init(&modules),
    );
    let (mut r, mut b) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let tr = boot_once(&w_ramux.0, &kernel, &initrd_ramux);
        let tb = boot_once(&w_busybox.0, &kernel, &initrd_busybox);
        eprintln!(
            "round {}/{rounds}: ramux-init {tr:.2} s, busybox init+rcS {tb:.2} s",
            i + 1
        );
        r.push(tr);
        b.push(tb);
    }
    let (mr, mb) = (median(&mut r), median(&mut b));
    println!(
        "kernel start -> ready line (median of {rounds}, TCG): ramux-init {mr:.2} s, busybox init+rcS {mb:.2} s, ratio busybox/ramux {:.2}",
        mb / mr
    );
}
