//! QEMU guests on vswitch ports: same-VLAN pings work, cross-VLAN pings fail, a trunk port
//! carries both VLANs, and a TAP port in a namespace reaches a guest.
//!
//! Fixture (built here): Debian's kernel 6.1.0-56 from ramux-testkit (`apt-get download`, cached
//! in the git-ignored images/cache/test-kernel/), the host's static busybox, the
//! virtio_net + 8021q module closure (vbuild's resolver), a shell /init that configures
//! addresses from the kernel command line and then runs commands read from the serial
//! console, packed with `cpio -o -H newc`. Three guests boot in parallel under TCG, on QEMU
//! command lines from vlaunch's builder ([`QemuCommand`]).

mod common;

use common::*;
use ramux_testkit::vlaunch::qemu::{NetBackend, NetDevice, QemuCommand, Serial};
use ramux_testkit::vlaunch::Accel;
use ramux_testkit::{kernel_tree, module_closure, KREL};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in $(cat /modules.order); do insmod /lib/modules/$m || echo "VSW-INSMOD-FAIL $m"; done
for w in $(cat /proc/cmdline); do
  case "$w" in vsw.*=*) k=${w%%=*}; k=${k#vsw.}; eval "VSW_$k='${w#*=}'";; esac
done
ip link set lo up
n=0; while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
ip link set eth0 up
for v in $(echo "$VSW_vlans" | tr , ' '); do vconfig add eth0 $v >/dev/null; ip link set eth0.$v up; done
for a in $(echo "$VSW_addr" | tr , ' '); do ip addr add ${a#*@} dev ${a%%@*}; done
p() { n=0; while [ $n -lt $2 ]; do if ping -c 1 -W 1 $1 >/dev/null 2>&1; then echo "PING-OK-$1"; return; fi; n=$((n+1)); done; echo "PING-FAIL-$1"; }
echo "VSW-NET-UP $(hostname)"
while read -r line; do eval "$line"; done
poweroff -f
"#;

fn build_initrd(tree: &Path, out: &Path) {
    require("cpio", "cpio");
    let root = out.parent().unwrap().join("root");
    let moddir = tree.join(format!("lib/modules/{KREL}"));
    let mods = module_closure(tree, &["virtio_pci", "virtio_net", "8021q"]);
    for m in &mods {
        let dst = root.join(format!("lib/modules/{m}"));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(moddir.join(m), &dst).unwrap();
    }
    std::fs::write(root.join("modules.order"), mods.join("\n")).unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let bb = Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "/bin/busybox missing: install the Debian package busybox-static"
    );
    std::fs::copy(bb, root.join("bin/busybox")).unwrap();
    std::fs::write(root.join("init"), INIT).unwrap();
    sh(&format!(
        "chmod 755 '{}/init' && cd '{}' && find . | cpio -o -H newc --quiet > '{}'",
        root.display(),
        root.display(),
        out.display()
    ));
}

struct Guest {
    name: String,
    child: Child,
    stdin: ChildStdin,
    out: Arc<Mutex<String>>,
}

impl Guest {
    fn boot(
        name: &str,
        kernel: &Path,
        initrd: &Path,
        backend: NetBackend,
        mac: &str,
        params: &str,
    ) -> Guest {
        let mut q = QemuCommand::kernel_boot(
            Accel::Tcg,
            256,
            kernel,
            initrd,
            &format!("console=ttyS0 quiet loglevel=1 panic=-1 {params}"),
        );
        q.no_reboot = true;
        q.serial = Serial::Stdio;
        let mut nic = NetDevice::virtio(backend, Some(mac.parse().expect("MAC")));
        // No iPXE option ROM: the guests boot straight into -kernel.
        nic.option_rom = false;
        q.nics = vec![nic];
        let mut child = q
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu-system-x86_64");
        let stdin = child.stdin.take().unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        for mut r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let o = out.clone();
            std::thread::spawn(move || {
                let mut b = [0u8; 4096];
                while let Ok(n) = r.read(&mut b) {
                    if n == 0 {
                        break;
                    }
                    o.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&b[..n]));
                }
            });
        }
        Guest {
            name: name.into(),
            child,
            stdin,
            out,
        }
    }

    fn wait(&self, marker: &str, timeout: Duration) -> String {
        let t = Instant::now();
        loop {
            {
                let o = self.out.lock().unwrap();
                if o.contains(marker) {
                    return o.clone();
                }
            }
            if t.elapsed() > timeout {
                panic!(
                    "guest {}: no {marker:?} within {timeout:?}; console:\n{}",
                    self.name,
                    self.out.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn run(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        self.stdin.flush().unwrap();
    }

    /// `p IP N` in the guest; returns true on PING-OK.
    fn ping(&mut self, ip: &str, tries: u32) -> bool {
        let before = self.out.lock().unwrap().len();
        self.run(&format!("p {ip} {tries}"));
        let t = Instant::now();
        loop {
            let o = self.out.lock().unwrap()[before..].to_string();
            if o.contains(&format!("PING-OK-{ip}")) {
                return true;
            }
            if o.contains(&format!("PING-FAIL-{ip}")) {
                return false;
            }
            assert!(
                t.elapsed() < Duration::from_secs(tries as u64 * 3 + 30),
                "guest {}: ping {ip} never finished",
                self.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn qemu_guests_vlans_trunk_and_tap() {
    assert!(
        is_root(),
        "guest test needs root for the tap namespace (CI runs as root)"
    );
    require("qemu-system-x86_64", "qemu-system-x86");
    require("ip", "iproute2");
    let tree = kernel_tree();
    let work = tempfile::Builder::new()
        .prefix("vsw-guest-")
        .tempdir()
        .unwrap();
    let initrd = work.path().join("initrd.cpio");
    build_initrd(&tree, &initrd);
    let kernel = tree.join(format!("boot/vmlinuz-{KREL}"));

    // Switch in its own namespace with a tap there; QEMU reaches it through the filesystem.
    let ns = netns("g");
    let tap = uniq("gt");
    sh(&format!("ip -n {} tuntap add dev {tap} mode tap", ns.name));
    let rc = work.path().join("lab.rc");
    std::fs::write(
        &rc,
        "vlan/create 10\nvlan/create 20\nport/create 1\nport/setvlan 1 10\nport/create 2\nport/setvlan 2 20\n\
         port/create 3\nvlan/addport 10 3\nvlan/addport 20 3\nport/setvlan 3 4095\n\
         port/create 4\nport/setvlan 4 10\nport/allocatable 4 1\n",
    )
    .unwrap();
    // Guest B uses QEMU's -netdev stream (vswitch --stream listener on port 2); A and C use
    // -netdev vde.
    let stream = work.path().join("b.stream");
    let stream_arg = format!("{}:2", stream.display());
    let sw = Sw::start_with(
        bin(),
        &[
            "-f",
            rc.to_str().unwrap(),
            "-t",
            &tap,
            "--stream",
            &stream_arg,
        ],
        &["ip", "netns", "exec", &ns.name],
    );
    let vde = |port: u16| NetBackend::Vde {
        switch_dir: sw.sock.clone(),
        port,
    };
    let b_netdev = NetBackend::StreamConnect(stream.clone());
    sh(&format!(
        "ip -n {n} addr add 10.10.0.9/24 dev {tap} && ip -n {n} link set {tap} up",
        n = ns.name
    ));

    let mut a = Guest::boot(
        "A",
        &kernel,
        &initrd,
        vde(1),
        "00:16:3e:00:00:01",
        "vsw.addr=eth0@10.10.0.1/24,eth0@10.99.0.1/24",
    );
    let mut b = Guest::boot(
        "B",
        &kernel,
        &initrd,
        b_netdev,
        "00:16:3e:00:00:02",
        "vsw.addr=eth0@10.20.0.2/24,eth0@10.99.0.2/24",
    );
    let mut c = Guest::boot(
        "C",
        &kernel,
        &initrd,
        vde(3),
        "00:16:3e:00:00:03",
        "vsw.vlans=10,20 vsw.addr=eth0.10@10.10.0.3/24,eth0.20@10.20.0.3/24",
    );
    // TCG boots take 6-10 s on an idle machine; CI shares 2 cores, so allow a lot more.
    let t = Instant::now();
    while ![&a, &b, &c]
        .iter()
        .all(|g| g.out.lock().unwrap().contains("VSW-NET-UP"))
    {
        if t.elapsed() > Duration::from_secs(300) {
            let ports = sw
                .mgmt()
                .cmd("port/print")
                .map(|r| r.data.join("\n"))
                .unwrap_or_default();
            let mut msg = format!("guests not up within 300 s; switch ports:\n{ports}\n");
            for g in [&mut a, &mut b, &mut c] {
                let alive = g.child.try_wait().map(|s| s.is_none()).unwrap_or(false);
                msg.push_str(&format!(
                    "--- guest {} (running: {alive}):\n{}\n",
                    g.name,
                    g.out.lock().unwrap()
                ));
            }
            panic!("{msg}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for g in [&a, &b, &c] {
        let o = g.wait("VSW-NET-UP", Duration::from_secs(1));
        assert!(
            !o.contains("VSW-INSMOD-FAIL"),
            "guest {}: module load failed:\n{o}",
            g.name
        );
    }
    let ports = sw.mgmt().cmd("port/print").unwrap();
    assert!(
        ports
            .data
            .iter()
            .filter(|l| l.contains(": QEMU user="))
            .count()
            == 2,
        "{ports:?}"
    );
    assert!(
        ports.data.iter().any(|l| l.contains("module stream")),
        "{ports:?}"
    );

    // Trunk guest reaches both VLANs (tagged on its port, untagged at A and B).
    assert!(c.ping("10.10.0.1", 60), "trunk C -> A over VLAN 10");
    assert!(c.ping("10.20.0.2", 60), "trunk C -> B over VLAN 20");
    // Same VLAN, access to trunk.
    assert!(a.ping("10.10.0.3", 10), "A -> C over VLAN 10");
    // A and B share an IP subnet but not a VLAN: no path (B is up: C just reached it).
    assert!(!a.ping("10.99.0.2", 4), "A must not reach B across VLANs");
    assert!(!b.ping("10.99.0.1", 3), "B must not reach A across VLANs");
    // Tap in the namespace (VLAN 10 access) reaches guest A.
    let o = netns_sh(&ns, "ping -c 2 -W 3 10.10.0.1");
    assert!(
        o.status.success(),
        "tap -> guest A: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let r = sw.mgmt().cmd("port/print 2").unwrap();
    assert!(r.data.iter().any(|l| l.starts_with(" IN:  pkts")), "{r:?}");
}
