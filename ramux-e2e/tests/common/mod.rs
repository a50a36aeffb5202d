//! Helpers shared by the end-to-end tests and the boot benchmark: build an image once per
//! process, limit concurrent QEMUs, and clean up VMs, switches and temp dirs even when a test
//! fails (Drop guards).
#![allow(dead_code)] // each test file uses a different subset

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use vlaunch::vm::{LaunchOptions, Vm};

/// TCG boots take 5-20 s here; CI runners share 2 cores between two guests, so be generous.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ramux-e2e/ has a parent")
        .to_path_buf()
}

/// `$RAMUX_BIN_DIR` with the static ramux binaries (scripts/build; CI sets it).
pub fn bin_dir() -> PathBuf {
    let d = std::env::var_os("RAMUX_BIN_DIR")
        .filter(|d| !d.is_empty())
        .expect(
            "RAMUX_BIN_DIR is not set: run scripts/build, then \
         export RAMUX_BIN_DIR=$PWD/target/x86_64-unknown-linux-gnu/release",
        );
    let d = PathBuf::from(d);
    assert!(
        d.join("ramux-init").is_file(),
        "{}/ramux-init missing: run scripts/build (static ramux binaries)",
        d.display()
    );
    d
}

/// A ramux binary from `$RAMUX_BIN_DIR`, or a failure naming how to get it.
pub fn ramux_bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.is_file(), "{} missing: run scripts/build", p.display());
    p
}

/// Fails (never skips) when a host tool is missing, naming the Debian package.
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "{tool} not found: apt-get install {package}");
}

/// A built image; its temp directory goes when the last test using it drops it.
pub struct Image {
    pub iso: PathBuf,
    pub report: vbuild::BuildReport,
    _dir: tempfile::TempDir,
}

impl Image {
    /// RAM for the guest: vbuild's recommendation, at least 1 GiB.
    pub fn mem_mib(&self) -> u32 {
        (self.report.recommended_min_ram_mib as u32).max(1024)
    }
}

/// Builds `<profile>` (role BACKUP) with the vbuild library, once per process while some test
/// holds it; builds are serialised (they share images/cache).
pub fn image(profile: &str) -> Arc<Image> {
    image_role(profile, "BACKUP")
}

/// [`image`] for another role.
pub fn image_role(profile: &str, role: &str) -> Arc<Image> {
    image_with(profile, role, &[])
}

/// [`image_role`] with `--set KEY=VALUE` variables; `role` empty for a role-less profile
/// (`client`).
pub fn image_with(profile: &str, role: &str, sets: &[(&str, &str)]) -> Arc<Image> {
    static IMAGES: OnceLock<Mutex<HashMap<String, Weak<Image>>>> = OnceLock::new();
    let images = IMAGES.get_or_init(Default::default);
    let mut map = images.lock().unwrap_or_else(|e| e.into_inner());
    let mut key = if role.is_empty() {
        profile.to_string()
    } else {
        format!("{profile}-{}", role.to_ascii_lowercase())
    };
    for (k, v) in sets {
        key.push_str(&format!("-{k}={v}"));
    }
    if let Some(img) = map.get(&key).and_then(Weak::upgrade) {
        return img;
    }
    for (tool, pkg) in [
        ("xorriso", "xorriso"),
        ("mmdebstrap", "mmdebstrap"),
        ("qemu-system-x86_64", "qemu-system-x86"),
    ] {
        require_tool(tool, pkg);
    }
    let dir = tempfile::Builder::new()
        .prefix("ramux-e2e-img-")
        .tempdir()
        .expect("temp dir");
    let file: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let iso = dir.path().join(format!("{file}.iso"));
    let t0 = Instant::now();
    let report = vbuild::build_iso(&vbuild::BuildRequest {
        root: repo_root(),
        profile: profile.into(),
        role: role.into(),
        sets: sets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        out: Some(iso.clone()),
        bin_dir: Some(bin_dir()),
        quiet: true,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("vbuild iso {profile} --role {role} failed: {e:#}"));
    eprintln!(
        "e2e: built {key} in {:.1} s ({} bytes)",
        t0.elapsed().as_secs_f64(),
        report.size
    );
    let img = Arc::new(Image {
        iso,
        report,
        _dir: dir,
    });
    map.insert(key, Arc::downgrade(&img));
    img
}

/// At most two QEMUs at once in this process (CI has 2 cores).
pub struct QemuSlots {
    n: usize,
}

static SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());
const MAX_QEMU: usize = 2;

/// Blocks until `n` (1 or 2) QEMU slots are free.
pub fn qemu_slots(n: usize) -> QemuSlots {
    assert!(n <= MAX_QEMU);
    let (m, cv) = &SLOTS;
    let mut used = m.lock().unwrap_or_else(|e| e.into_inner());
    while *used + n > MAX_QEMU {
        used = cv.wait(used).unwrap_or_else(|e| e.into_inner());
    }
    *used += n;
    QemuSlots { n }
}

impl Drop for QemuSlots {
    fn drop(&mut self) {
        let (m, cv) = &SLOTS;
        let mut used = m.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.n;
        cv.notify_all();
    }
}

/// A unique, short VM name (unix socket paths are limited to 108 bytes).
pub fn vm_name(tag: &str) -> String {
    format!("e2e-{}-{tag}", std::process::id())
}

/// A VM that is killed and whose state is removed when the guard drops.
pub struct VmGuard {
    pub vm: Vm,
    pub state_root: tempfile::TempDir,
}

impl Drop for VmGuard {
    fn drop(&mut self) {
        self.vm.kill();
        let _ = self.vm.remove_state();
    }
}

/// Launch options for `img` with a private state root.
pub fn options(img: &Image, tag: &str, state_root: &Path) -> LaunchOptions {
    let mut o = LaunchOptions::new(&img.iso);
    o.name = Some(vm_name(tag));
    o.mem_mib = img.mem_mib();
    o.state_root = state_root.to_path_buf();
    o
}

/// A private state root under /tmp (short paths for the sockets).
pub fn state_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vl-e2e-")
        .tempdir_in("/tmp")
        .expect("temp dir")
}

/// A router applies its site at boot and fails closed without the NICs it names (eth0, eth1):
/// a private vswitch with two plain ports for them. Keep the guard while the VM runs.
pub fn router_nics(opts: &mut LaunchOptions) -> SwitchGuard {
    let mut sw = SwitchGuard::new();
    sw.start_vswitch("port/create 1\nport/create 2\n");
    opts.switch_dir = Some(sw.dir.clone());
    opts.ports = vec![1, 2];
    sw
}

/// Launches and waits for the ready line; panics with the console tail otherwise.
pub fn boot(opts: LaunchOptions, state_root: tempfile::TempDir) -> (VmGuard, vlaunch::Ready) {
    let mut log = |m: &str| eprintln!("e2e: {m}");
    let vm = vlaunch::launch(&opts, &mut log).unwrap_or_else(|e| panic!("launch failed: {e:#}"));
    let mut g = VmGuard { vm, state_root };
    let name = g.vm.name().to_string();
    match g.vm.wait_ready(BOOT_TIMEOUT, &mut |_, _| {}) {
        Ok(r) => {
            eprintln!(
                "e2e: {name} ready after {:.1} s: {}",
                r.seconds, r.info.line
            );
            (g, r)
        }
        Err(e) => panic!(
            "{name} did not boot: {e}\ncommand: {}",
            g.vm.record.qemu_command
        ),
    }
}

/// Runs `sh -c cmd` in the guest through its agent on `sock` (waiting up to 60 s for the agent),
/// with `input` on its stdin, for at most `timeout`; panics when the agent fails.
pub fn guest_sh(
    sock: &Path,
    cmd: &str,
    input: Option<&[u8]>,
    timeout: Duration,
) -> vlaunch::qga::ExecOutput {
    let mut agent = vlaunch::qga::wait_agent(sock, Duration::from_secs(60)).expect("agent");
    let argv = ["/bin/sh".to_string(), "-c".into(), cmd.into()];
    agent
        .exec(&argv, input, timeout)
        .unwrap_or_else(|e| panic!("{cmd}: {e:#}"))
}

/// Sends `cmd` to the guest shell on the serial socket and returns the console output until
/// `expect` shows up (the guest runs a shell on ttyS0 after the ready line). `cmd`'s echo must
/// not contain `expect`.
pub fn console_run(sock: &Path, cmd: &str, expect: &str, timeout: Duration) -> String {
    let mut s = UnixStream::connect(sock).expect("connect serial socket");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut sent_at: Option<Instant> = None;
    let mut buf = [0u8; 4096];
    loop {
        // (Re)send every 5 s: the shell may still be starting when we connect.
        if sent_at
            .map(|t| t.elapsed() > Duration::from_secs(5))
            .unwrap_or(true)
        {
            s.write_all(format!("{cmd}\n").as_bytes())
                .expect("write console");
            sent_at = Some(Instant::now());
        }
        match s.read(&mut buf) {
            Ok(0) => panic!("console closed; got: {}", String::from_utf8_lossy(&out)),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        let text = String::from_utf8_lossy(&out);
        // Callers pick commands whose echo does not contain `expect` (e.g. `echo x-$((40+2))`).
        // ... and the line carrying it must be complete.
        if let Some(at) = text.find(expect) {
            if text[at..].contains('\n') {
                return text.into_owned();
            }
        }
        assert!(
            t0.elapsed() < timeout,
            "no {expect:?} on the console within {timeout:?}; got:\n{text}"
        );
    }
}

/// A switch process killed on drop (started by the test or by vlaunch with a pid file).
pub struct SwitchGuard {
    pub dir: PathBuf,
    pub pidfile: PathBuf,
    pub mgmt: Option<PathBuf>,
    _tmp: tempfile::TempDir,
}

impl SwitchGuard {
    /// A fresh, not yet existing switch directory (the switch creates it).
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("vl-sw-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let dir = tmp.path().join("sw");
        SwitchGuard {
            pidfile: vlaunch::net::switch_pidfile(&dir),
            mgmt: None,
            dir,
            _tmp: tmp,
        }
    }

    /// Starts ramux's vswitch daemonised with a management socket and the commands of `rc`
    /// (vde_switch's rc-file syntax: one console command per line) applied at start.
    pub fn start_vswitch(&mut self, rc: &str) {
        let mgmt = self._tmp.path().join("mgmt");
        let rcfile = self._tmp.path().join("switch.rc");
        std::fs::write(&rcfile, rc).expect("write rc file");
        // --port-streams as vlaunch starts it: the guests then attach with -netdev stream.
        let st = Command::new(ramux_bin("vswitch"))
            .arg("-s")
            .arg(&self.dir)
            .arg("--port-streams")
            .arg("-M")
            .arg(&mgmt)
            .arg("-f")
            .arg(&rcfile)
            .arg("-p")
            .arg(&self.pidfile)
            .arg("-d")
            .stdin(Stdio::null())
            .status()
            .expect("start vswitch");
        assert!(st.success(), "vswitch failed: {st}");
        let t0 = Instant::now();
        while !vlaunch::net::switch_answers(&self.dir) {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "vswitch does not answer"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.mgmt = Some(mgmt);
    }

    /// Starts Debian's vde_switch daemonised with a management socket.
    pub fn start_vde_switch(&mut self) {
        require_tool("vde_switch", "vde2");
        let mgmt = self._tmp.path().join("mgmt");
        let st = Command::new("vde_switch")
            .arg("-s")
            .arg(&self.dir)
            .arg("-M")
            .arg(&mgmt)
            .arg("-p")
            .arg(&self.pidfile)
            .arg("-d")
            .status()
            .expect("start vde_switch");
        assert!(st.success(), "vde_switch failed: {st}");
        let t0 = Instant::now();
        while !vlaunch::net::switch_answers(&self.dir) {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "vde_switch does not answer"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.mgmt = Some(mgmt);
    }

    /// One management command (vde_switch console framing: banner, prompt `vde$ `).
    pub fn mgmt(&self, cmd: &str) -> String {
        let path = self.mgmt.as_ref().expect("no management socket");
        let mut s = UnixStream::connect(path).expect("connect mgmt");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let read_prompt = |s: &mut UnixStream| {
            let mut out = Vec::new();
            let mut b = [0u8; 4096];
            while !out.ends_with(b"vde$ ") {
                let n = s.read(&mut b).expect("read mgmt");
                assert!(n > 0, "mgmt closed: {}", String::from_utf8_lossy(&out));
                out.extend_from_slice(&b[..n]);
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        read_prompt(&mut s);
        s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        read_prompt(&mut s)
    }
}

impl Drop for SwitchGuard {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pidfile) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: kill(2) has no memory effects; the pid is the switch we (or vlaunch for
                // us) started, read from its pid file.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }
}

/// `vde_plug` on port `port` of the switch in `dir`: frames in and out with the 2-byte
/// big-endian length framing of vde_plug's stdin/stdout. Killed on drop.
pub struct Plug {
    child: Child,
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl Plug {
    pub fn new(dir: &Path, port: u16) -> Self {
        require_tool("vde_plug", "vde2");
        let mut child = Command::new("vde_plug")
            .arg(format!("vde://{}[{port}]", dir.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vde_plug");
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || loop {
            let mut len = [0u8; 2];
            if out.read_exact(&mut len).is_err() {
                break;
            }
            let mut f = vec![0u8; u16::from_be_bytes(len) as usize];
            if out.read_exact(&mut f).is_err() || tx.send(f).is_err() {
                break;
            }
        });
        Plug { child, rx }
    }

    pub fn send(&mut self, frame: &[u8]) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(&(frame.len() as u16).to_be_bytes())
            .unwrap();
        stdin.write_all(frame).unwrap();
        stdin.flush().unwrap();
    }

    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for Plug {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ARP request (who-has `target` tell `sender_ip`) from `src`, padded to 60 bytes.
pub fn arp_request(src: [u8; 6], sender_ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&sender_ip);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

/// Asks for `target` from `me` (as `sender_ip`) through `plug`, once a second, until the reply
/// addressed to `me` arrives (60 s at most; `what` names the exchange in the failure).
/// Returns the reply frame and its sender MAC.
pub fn arp_resolve(
    plug: &mut Plug,
    me: [u8; 6],
    sender_ip: [u8; 4],
    target: [u8; 4],
    what: &str,
) -> (Vec<u8>, [u8; 6]) {
    let req = arp_request(me, sender_ip, target);
    let t0 = Instant::now();
    let mut last_sent: Option<Instant> = None;
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no ARP reply: {what}"
        );
        if last_sent.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
            plug.send(&req);
            last_sent = Some(Instant::now());
        }
        if let Some(f) = plug.recv(Duration::from_millis(200)) {
            if let Some((mac, spa)) = arp_reply(&f) {
                if spa == target && f[..6] == me {
                    return (f, mac);
                }
            }
        }
    }
}

/// If `f` is an ARP reply, its (sender MAC, sender IP).
pub fn arp_reply(f: &[u8]) -> Option<([u8; 6], [u8; 4])> {
    if f.len() < 42 || f[12..14] != [0x08, 0x06] || f[20..22] != [0, 2] {
        return None;
    }
    Some((f[22..28].try_into().ok()?, f[28..32].try_into().ok()?))
}

/// `sh -c CMD` in network namespace `ns` (here when `ns` is empty), as the namespace tests run
/// their setup and probes.
pub fn ns_sh(ns: &str, cmd: &str) -> std::process::Output {
    let mut c = if ns.is_empty() {
        Command::new("sh")
    } else {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "sh"]);
        c
    };
    c.args(["-c", cmd]).output().expect("run sh")
}

/// `mcopy` onto the key image as an admin's PC writes a FAT stick.
pub fn mcopy(key: &Path, local: &Path, dest: &str) {
    let o = std::process::Command::new("mcopy")
        .args(["-o", "-i"])
        .arg(key)
        .arg(local)
        .arg(format!("::{dest}"))
        .output()
        .expect("mcopy (Debian package mtools)");
    assert!(
        o.status.success(),
        "mcopy {dest}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `mmd` (mtools): a directory on the key image.
pub fn mmd(key: &Path, dir: &str) {
    let o = std::process::Command::new("mmd")
        .arg("-i")
        .arg(key)
        .arg(format!("::{dir}"))
        .output()
        .expect("mmd (mtools)");
    assert!(o.status.success(), "mmd {dir}: {o:?}");
}
