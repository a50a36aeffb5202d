//! Re-attaching a QEMU NIC after its switch restarted (vm::reattach_streams): a real QEMU 7.2
//! (no guest: `-S`, paused) with one NIC on port 1 of a real vswitch; what the NIC's hub
//! receives from the switch is dumped to a pcap (`filter-dump` on hub port `up0`, added again
//! over QMP after each re-attach since it goes with the hub port; a paused guest's NIC takes
//! nothing, so the hub is as far as a frame can be seen). A frame sent into the switch on port
//! 2 reaches the hub; the switch is killed and started again: QEMU's stream stays dead (the
//! frame does not arrive, the port has no endpoint); after the re-attach over QMP the port has
//! its endpoint again, a frame reaches the hub, and `info network` shows the guest's device
//! still on hub port `net0`. Needs root-free QEMU and vswitch
//! ($RAMUX_BIN_DIR, as scripts/test sets it); skipped with a message when either is missing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vlaunch::qemu::{NetBackend, NetDevice, QemuCommand, Serial};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vswitch() -> Option<PathBuf> {
    vlaunch::net::find_vswitch().ok()
}

fn start_switch(bin: &Path, dir: &Path) -> Kill {
    let sw = dir.join("sw");
    let c = Command::new(bin)
        .arg("-s")
        .arg(&sw)
        .arg("-M")
        .arg(dir.join("mgmt"))
        .args(["--port-streams", "-n", "4"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !dir.join("mgmt").exists() || !dir.join("sw.streams/1").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "switch did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Kill(c)
}

fn ctl(bin: &Path, dir: &Path, cmd: &str) -> String {
    let out = Command::new(bin)
        .args(["ctl", "-M"])
        .arg(dir.join("mgmt"))
        .args(cmd.split(' '))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has_endpoint(bin: &Path, dir: &Path) -> bool {
    ctl(bin, dir, "port/print 1").contains("stream peer")
}

/// Sends one broadcast frame carrying `tag` into port 2 (through `vswitch plug`).
fn send_frame(bin: &Path, dir: &Path, tag: &[u8; 8]) {
    let mut p = Command::new(bin)
        .arg("plug")
        .arg(format!("{}:2", dir.join("sw").display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x88, 0xb5]);
    f.extend_from_slice(tag);
    f.resize(60, 0);
    let mut framed = (f.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&f);
    let mut stdin = p.stdin.take().unwrap();
    // The plug needs its port before the frame: give it a moment, then send a few times.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200));
        stdin.write_all(&framed).unwrap();
        stdin.flush().unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    let _ = p.kill();
    let _ = p.wait();
}

fn dumped(pcap: &Path, tag: &[u8; 8]) -> bool {
    std::thread::sleep(Duration::from_millis(300));
    let d = std::fs::read(pcap).unwrap_or_default();
    d.windows(8).any(|w| w == tag)
}

#[test]
fn a_nic_is_reattached_after_its_switch_restarts() {
    let Some(bin) = vswitch() else {
        eprintln!("skipped: no vswitch ($RAMUX_BIN_DIR)");
        return;
    };
    if Command::new(vlaunch::qemu::QEMU)
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no {}", vlaunch::qemu::QEMU);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sw = start_switch(&bin, dir);
    ctl(&bin, dir, "port/create 1");
    let stream = dir.join("sw.streams/1");
    let pcap = dir.join("nic.pcap");
    let qmp = dir.join("qmp.sock");
    let mut q = QemuCommand::network_boot(vlaunch::Accel::Tcg, 64);
    q.nics = vec![NetDevice::virtio(
        NetBackend::StreamConnect(stream.clone()),
        None,
    )];
    q.serial = Serial::None;
    q.qmp = Some(qmp.clone());
    q.extra = vec![
        "-S".into(),
        "-object".into(),
        format!("filter-dump,id=d0,netdev=up0,file={}", pcap.display()),
    ];
    let mut cmd = q.command();
    let _qemu = Kill(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    while !(qmp.exists() && has_endpoint(&bin, dir)) {
        assert!(t.elapsed() < Duration::from_secs(20), "QEMU did not attach");
        std::thread::sleep(Duration::from_millis(50));
    }
    send_frame(&bin, dir, b"FRAME-1!");
    assert!(
        dumped(&pcap, b"FRAME-1!"),
        "a frame reaches the NIC at first"
    );

    // The switch restarts: QEMU's stream does not come back by itself.
    drop(sw);
    let _sw = start_switch(&bin, dir);
    ctl(&bin, dir, "port/create 1");
    std::thread::sleep(Duration::from_secs(1));
    assert!(!has_endpoint(&bin, dir), "QEMU 7.2 reconnected by itself?");
    send_frame(&bin, dir, b"FRAME-2!");
    assert!(
        !dumped(&pcap, b"FRAME-2!"),
        "a frame crossed a dead stream?"
    );

    let mut m = vlaunch::qmp::Qmp::connect(&qmp, Duration::from_secs(5)).unwrap();
    vlaunch::vm::reattach_streams(&mut m, &[(0, stream.clone())]).unwrap();
    let dump = |m: &mut vlaunch::qmp::Qmp, id: &str, file: &Path| {
        let a = serde_json::json!({"qom-type": "filter-dump", "id": id, "netdev": "up0",
                                   "file": file.to_str().unwrap()});
        m.execute("object-add", Some(a)).unwrap();
    };
    let pcap = dir.join("nic-3.pcap");
    dump(&mut m, "d3", &pcap);
    let t = Instant::now();
    while !has_endpoint(&bin, dir) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no endpoint after re-attach"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    send_frame(&bin, dir, b"FRAME-3!");
    assert!(
        dumped(&pcap, b"FRAME-3!"),
        "a frame reaches the NIC after the re-attach"
    );
    let info = m
        .execute(
            "human-monitor-command",
            Some(serde_json::json!({"command-line": "info network"})),
        )
        .unwrap();
    let info = info.as_str().unwrap_or_default().replace('\r', "");
    assert!(
        info.contains("hub 0\n \\ up0: sw0: index=0,type=stream,unix:")
            && info.contains(" \\ net0: virtio-net-pci.0:"),
        "{info}"
    );
    // Twice in a row is fine too (a connected stream is replaced).
    vlaunch::vm::reattach_streams(&mut m, &[(0, stream)]).unwrap();
    let pcap = dir.join("nic-4.pcap");
    dump(&mut m, "d4", &pcap);
    send_frame(&bin, dir, b"FRAME-4!");
    assert!(dumped(&pcap, b"FRAME-4!"));
}
