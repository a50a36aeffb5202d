//! Boots ramux-init as /init of a tiny initramfs under QEMU (TCG) with the Debian 12 kernel.
//!
//! The fixture is this crate's own (not vbuild's pipeline): Debian's linux-image package
//! (downloaded with `apt-get download` into the git-ignored images/cache/), busybox from the
//! host's busybox-static, iproute2's `ip` and nftables' `nft` copied with their shared
//! libraries, a module closure computed from modules.dep, and a test appliance.toml.
//! Two boots: a full one (ready line, module/service/labwall failures, shell checks, ACPI
//! power-down over QMP) and one with a broken appliance.toml (emergency shell, busybox
//! `poweroff` typed on the serial console).
//!
//! Needs root-free tools only: qemu-system-x86, busybox-static, cpio, iproute2, nftables, apt.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KREL: &str = "6.1.0-56-amd64";
const KPKG: &str = "linux-image-6.1.0-56-amd64";
const STALE_MACHINE_ID: &str = "0123456789abcdef0123456789abcdef";
/// Modules the full test appliance loads (closure added from modules.dep). `crc32c_generic` by
/// hand: nf_tables needs libcrc32c, whose `softdep pre: crc32c` modules.dep does not express.
/// No `evdev` (a module in this kernel): the power button must work through ACPI netlink with
/// `button` alone, as in images whose module list lacks evdev.
const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_net",
    "button",
    "crc32c_generic",
    "nf_tables",
    "virtio_rng",
];
/// The emergency image ships evdev.ko (not listed anywhere): init loads it by itself.
const MODULES_WITH_EVDEV: &[&str] = &["virtio_pci", "virtio_net", "button", "evdev"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn require(tool: &str, package: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p.to_string_lossy().into_owned();
        }
    }
    panic!("`{tool}` not found: install the Debian package {package} (scripts/apt-packages)");
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Extracted kernel package under images/cache/ramux-init/<pkg>/, downloaded once (atomic rename, so
/// concurrent test processes never see half an extraction).
fn kernel_tree() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cache = workspace_root().join("images/cache/ramux-init");
    let tree = cache.join(KPKG);
    if tree
        .join(format!("lib/modules/{KREL}/modules.dep"))
        .exists()
    {
        return tree;
    }
    fs::create_dir_all(&cache).unwrap();
    let tmp = cache.join(format!(".{KPKG}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(tmp.join("x")).unwrap();
    require("apt-get", "apt");
    require("dpkg-deb", "dpkg");
    let download = || {
        Command::new("apt-get")
            .args(["download", KPKG])
            .current_dir(&tmp)
            .output()
            .unwrap()
    };
    let mut out = download();
    if !out.status.success() {
        // A fresh machine may have no package lists yet (CI runs as root).
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        out = download();
    }
    assert!(
        out.status.success(),
        "apt-get download {KPKG} failed (needs root or a readable apt cache, and package lists): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = fs::read_dir(&tmp)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("no .deb downloaded");
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(tmp.join("x")));
    // Maintainer scripts did not run: compute modules.dep like the postinst would.
    run(Command::new(require("depmod", "kmod"))
        .arg("-b")
        .arg(tmp.join("x"))
        .arg(KREL));
    if fs::rename(tmp.join("x"), &tree).is_err() {
        assert!(
            tree.join(format!("lib/modules/{KREL}/modules.dep"))
                .exists(),
            "could not place {}",
            tree.display()
        );
    }
    let _ = fs::remove_dir_all(&tmp);
    tree
}

/// Modules named by file stem plus their modules.dep closure, dependencies first.
fn module_closure(tree: &Path, wanted: &[&str]) -> Vec<String> {
    let dep = fs::read_to_string(tree.join(format!("lib/modules/{KREL}/modules.dep"))).unwrap();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for line in dep.lines() {
        let Some((m, d)) = line.split_once(':') else {
            continue;
        };
        // Kernel module names use `_` where file names may use `-` (virtio-rng.ko is virtio_rng).
        let stem = m
            .rsplit('/')
            .next()
            .unwrap()
            .split(".ko")
            .next()
            .unwrap()
            .replace('-', "_");
        by_name.insert(stem, m.to_string());
        deps.insert(
            m.to_string(),
            d.split_whitespace().map(str::to_string).collect(),
        );
    }
    fn visit(
        m: &str,
        deps: &BTreeMap<String, Vec<String>>,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if !seen.insert(m.to_string()) {
            return;
        }
        for d in deps.get(m).into_iter().flatten() {
            visit(d, deps, seen, out);
        }
        out.push(m.to_string());
    }
    let (mut seen, mut out) = (BTreeSet::new(), Vec::new());
    for w in wanted {
        let m = by_name
            .get(*w)
            .unwrap_or_else(|| panic!("module {w} not in modules.dep"));
        visit(m, &deps, &mut seen, &mut out);
    }
    out
}

/// Copies a host file into the staging root at the same path, dereferencing symlinks.
fn copy_in(root: &Path, host: &Path, at: &str) {
    let dst = root.join(at.trim_start_matches('/'));
    fs::create_dir_all(dst.parent().unwrap()).unwrap();
    fs::copy(host, &dst)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", host.display(), dst.display()));
}

/// Copies a dynamically linked executable and the libraries `ldd` lists.
fn copy_with_libs(root: &Path, host: &str, at: &str) {
    copy_in(root, Path::new(host), at);
    let out = Command::new("ldd").arg(host).output().unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, r)) => r.split_whitespace().next().unwrap_or(""),
            None => line.split_whitespace().next().unwrap_or(""),
        };
        if path.starts_with('/') && !root.join(path.trim_start_matches('/')).exists() {
            copy_in(root, Path::new(path), path);
        }
    }
}

/// The ramux-init under test: $RAMUX_BIN_DIR/ramux-init (static, as CI builds it) when set,
/// else this build's binary (with its shared libraries when it is not static).
fn init_binary() -> (PathBuf, bool) {
    if let Ok(dir) = std::env::var("RAMUX_BIN_DIR") {
        let p = Path::new(&dir).join("ramux-init");
        assert!(
            p.exists(),
            "RAMUX_BIN_DIR={dir} has no ramux-init: run scripts/build first"
        );
        return (p, false);
    }
    let p = PathBuf::from(env!("CARGO_BIN_EXE_ramux-init"));
    let ldd = Command::new("ldd").arg(&p).output().unwrap();
    let dynamic = ldd.status.success() && String::from_utf8_lossy(&ldd.stdout).contains("=>");
    eprintln!(
        "RAMUX_BIN_DIR unset: using {} ({})",
        p.display(),
        if dynamic {
            "dynamic, libraries copied"
        } else {
            "static"
        }
    );
    (p, dynamic)
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Builds the initramfs for `appliance_toml` (plus optional /etc/ramux files) and returns the
/// kernel path and the cpio path.
fn build_image(
    work: &Path,
    appliance_toml: &str,
    etc_ramux: &[(&str, &str)],
    modules: &[&str],
) -> (PathBuf, PathBuf) {
    let busybox = require("busybox", "busybox-static");
    let cpio = require("cpio", "cpio");
    let ip = require("ip", "iproute2");
    let nft = require("nft", "nftables");
    let tree = kernel_tree();
    let root = work.join("root");
    fs::create_dir_all(&root).unwrap();
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/ramux",
        "root",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    copy_in(&root, Path::new(&busybox), "/bin/busybox");
    let applets = run(Command::new(&busybox).arg("--list"));
    for a in applets
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && *a != "ip")
    {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
    }
    copy_with_libs(&root, &ip, "/sbin/ip");
    copy_with_libs(&root, &nft, "/usr/sbin/nft");
    let (init, dynamic) = init_binary();
    if dynamic {
        copy_with_libs(&root, init.to_str().unwrap(), "/usr/sbin/ramux-init");
    } else {
        copy_in(&root, &init, "/usr/sbin/ramux-init");
    }
    std::os::unix::fs::symlink("usr/sbin/ramux-init", root.join("init")).unwrap();
    for m in module_closure(&tree, modules) {
        copy_in(
            &root,
            &tree.join(format!("lib/modules/{KREL}/{m}")),
            &format!("/lib/modules/{KREL}/{m}"),
        );
    }
    fs::write(root.join("etc/ramux/appliance.toml"), appliance_toml).unwrap();
    for (name, text) in etc_ramux {
        fs::write(root.join("etc/ramux").join(name), text).unwrap();
    }
    // A stale id as a careless build would leave it: init must replace it at every boot.
    fs::write(root.join("etc/machine-id"), format!("{STALE_MACHINE_ID}\n")).unwrap();
    let initrd = work.join("initrd.cpio");
    let out = fs::File::create(&initrd).unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "find . | LC_ALL=C sort | {cpio} -o -H newc --quiet"
        ))
        .current_dir(&root)
        .stdout(out)
        .status()
        .unwrap();
    assert!(st.success(), "cpio failed");
    (tree.join(format!("boot/vmlinuz-{KREL}")), initrd)
}

/// A running QEMU whose serial console is our stdin/stdout; killed on drop.
struct Vm {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
    qmp: PathBuf,
    started: Instant,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Vm {
    /// `rng`: give the guest a virtio-rng (the full test loads virtio_rng; without it the
    /// machine-id read waits ~1 s for the kernel's jitter entropy under TCG).
    fn boot(work: &Path, kernel: &Path, initrd: &Path, rng: bool) -> Vm {
        let qemu = require("qemu-system-x86_64", "qemu-system-x86");
        let qmp = work.join("qmp.sock");
        let mut child = Command::new(qemu)
            .args([
                "-accel",
                "tcg",
                "-m",
                "384",
                "-smp",
                "1",
                "-no-reboot",
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                "stdio",
            ])
            .args(["-nic", "user,model=virtio-net-pci,restrict=on"])
            .args(if rng {
                &["-device", "virtio-rng-pci"][..]
            } else {
                &[]
            })
            .arg("-kernel")
            .arg(kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", "console=tty0 console=ttyS0,115200n8 panic=-1"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start qemu-system-x86_64");
        let started = Instant::now();
        let out = Arc::new(Mutex::new(String::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = out.clone();
        let log = work.join("serial.log");
        std::thread::spawn(move || {
            let mut logf = fs::File::create(log).ok();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Some(f) = logf.as_mut() {
                    let _ = f.write_all(&buf[..n]);
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]).replace('\r', ""));
            }
        });
        let stdin = child.stdin.take();
        Vm {
            child,
            stdin,
            out,
            qmp,
            started,
        }
    }

    fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Waits until `pat` is in the console output; panics with the output on timeout or if
    /// QEMU exits first.
    fn wait_for(&mut self, pat: &str, timeout: Duration) -> Duration {
        let deadline = Instant::now() + timeout;
        loop {
            if self.text().contains(pat) {
                return self.started.elapsed();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                if self.text().contains(pat) {
                    return self.started.elapsed();
                }
                panic!(
                    "QEMU exited ({st}) before {pat:?} appeared; console:\n{}",
                    self.text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {pat:?} within {timeout:?}; console:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Sends one QMP command (JSON object text) after the capabilities handshake.
    fn qmp(&self, command_json: &str) -> String {
        let s = UnixStream::connect(&self.qmp).expect("connect QMP socket");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("QMP"), "QMP greeting: {line}");
        for cmd in [r#"{"execute":"qmp_capabilities"}"#, command_json] {
            writeln!(w, "{cmd}").unwrap();
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                if line.contains("\"return\"") || line.contains("\"error\"") {
                    assert!(line.contains("\"return\""), "QMP {cmd}: {line}");
                    break;
                }
            }
        }
        line
    }

    /// Text on the VGA console (tty0): the characters of the whole 32 KiB text-mode buffer at
    /// 0xb8000, saved through the QEMU monitor.
    fn vga_text(&self, work: &Path) -> String {
        let dump = work.join("vga.bin");
        let reply = self.qmp(&format!(
            r#"{{"execute":"human-monitor-command","arguments":{{"command-line":"pmemsave 0xb8000 32768 \"{}\""}}}}"#,
            dump.display()
        ));
        let bytes = fs::read(&dump)
            .unwrap_or_else(|e| panic!("pmemsave {}: {e}; QMP said {reply}", dump.display()));
        let chars: String = bytes
            .iter()
            .step_by(2)
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    ' '
                }
            })
            .collect();
        chars.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Waits for QEMU to exit by itself (guest powered off); returns how long that took.
    fn wait_exit(&mut self, timeout: Duration) -> Duration {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(
                    st.success(),
                    "QEMU exit status {st}; console:\n{}",
                    self.text()
                );
                return t.elapsed();
            }
            assert!(
                t.elapsed() < timeout,
                "guest did not power off within {timeout:?}; console:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn workdir(name: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("ramux-init-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

fn count_lines(text: &str, pred: impl Fn(&str) -> bool) -> usize {
    text.lines().filter(|l| pred(l.trim())).count()
}

const APPLIANCE: &str = r#"
profile = "inittest"
role = "MASTER"
hostname = "ramux-inittest"
kernel_release = "6.1.0-56-amd64"
modules = @MODULES@
[[service]]
name = "ticker"
argv = ["/bin/sleep", "3600"]
[[service]]
name = "flaky"
argv = ["/bin/sh", "-c", "exit 3"]
restart_delay_ms = 300
[[service]]
name = "ghost"
argv = ["/usr/sbin/ramux-no-such-daemon", "-d"]
restart_delay_ms = 5000
"#;

#[test]
fn boots_to_ready_reports_failures_and_powers_off_on_acpi_button() {
    let work = workdir("full");
    let tree = kernel_tree();
    let mut modules = module_closure(&tree, MODULES);
    modules.push("kernel/drivers/net/ramux_missing.ko".into());
    let toml = APPLIANCE.replace("@MODULES@", &format!("{modules:?}"));
    let (kernel, initrd) = build_image(
        &work.0,
        &toml,
        &[
            ("sysctl.conf", "net.ipv4.ip_forward = 1\nnet.ipv4.ramux_no_such_key = 1\n-net.ipv4.ramux_ignored = 1\n"),
            ("network.ip", "link set eth0 up\naddr add 192.0.2.1/24 dev eth0\nlink set ramux-nodev up\n"),
            ("ruleset.nft", "table inet ramuxtest {\n chain input {\n  type filter hook input priority 0; policy accept;\n  iif lo accept\n }\n}\n"),
        ],
        MODULES,
    );
    let mut vm = Vm::boot(&work.0, &kernel, &initrd, true);
    let ready = "ramux: ready profile=inittest role=MASTER host=ramux-inittest";
    let t_ready = vm.wait_for(ready, Duration::from_secs(120));
    vm.wait_for("ramux: up ", Duration::from_secs(5));
    // Let the flaky service fail and be retried a few times, then probe from the console shell.
    std::thread::sleep(Duration::from_secs(2));
    vm.type_line("echo \"==PROBE$((1+1))\"; grep SigBlk /proc/$(pidof sleep)/status; cat /proc/sys/net/ipv4/ip_forward; hostname; ip -o -4 addr show dev eth0; nft list tables; cat /etc/machine-id; (sleep 0.2 &); sleep 1; echo ZOMBIES=$(grep -l zombie /proc/[0-9]*/status 2>/dev/null | wc -l); echo \"==END$((1+1))\"");
    vm.wait_for("==END2", Duration::from_secs(30));
    let text = vm.text();
    let probe = text
        .split("==PROBE2")
        .last()
        .unwrap()
        .split("==END2")
        .next()
        .unwrap()
        .to_string();

    assert_eq!(
        count_lines(&text, |l| l == ready),
        1,
        "ready line must appear exactly once on the serial console:\n{text}"
    );
    assert!(text.contains("ramux: failed module ramux_missing: /lib/modules/6.1.0-56-amd64/kernel/drivers/net/ramux_missing.ko"), "{text}");
    assert!(!text.contains("ramux: failed module virtio"), "{text}");
    assert!(
        count_lines(&text, |l| l.starts_with(
            "ramux: failed flaky: exited with status 3, restarting in"
        )) >= 2,
        "flaky must be retried:\n{text}"
    );
    assert!(text.contains("ramux: failed ghost: cannot start: /usr/sbin/ramux-no-such-daemon: No such file or directory"), "{text}");
    assert!(!text.contains("ramux: failed ticker"), "{text}");
    assert!(
        text.contains(
            "ramux: failed labwall: /etc/ramux/sysctl.conf:2: net.ipv4.ramux_no_such_key = 1"
        ),
        "{text}"
    );
    assert!(
        !text.contains("ramux_ignored"),
        "`-key` failures are ignored:\n{text}"
    );
    assert_eq!(
        count_lines(&text, |l| l.starts_with(
            "ramux: failed labwall: /sbin/ip -batch /etc/ramux/network.ip: exit status: 1"
        ) && l.contains("ramux-nodev")),
        1,
        "{text}"
    );
    assert!(!text.contains("failed labwall: /usr/sbin/nft"), "{text}");
    assert!(
        !text.contains("ramux: power button /dev/input/"),
        "no evdev in this image:\n{text}"
    );
    // Effects seen from the console shell.
    assert!(
        probe.lines().any(|l| l.trim() == "1"),
        "ip_forward not set:\n{probe}"
    );
    assert!(probe.contains("ramux-inittest"), "{probe}");
    assert!(
        probe.contains("inet 192.0.2.1/24"),
        "network.ip lines before the failing one must apply:\n{probe}"
    );
    assert!(
        probe.contains("table inet ramuxtest"),
        "ruleset not loaded:\n{probe}"
    );
    assert!(
        probe
            .lines()
            .any(|l| l.trim().len() == 32 && l.trim().chars().all(|c| c.is_ascii_hexdigit())),
        "machine-id:\n{probe}"
    );
    assert!(
        !probe.contains(STALE_MACHINE_ID),
        "machine-id must be new at each boot:\n{probe}"
    );
    assert!(
        probe.contains("ZOMBIES=0"),
        "orphans must be reaped:\n{probe}"
    );
    assert!(
        probe
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["SigBlk:", "0000000000000000"]),
        "services must not inherit init's blocked signals:\n{probe}"
    );

    let vga = vm.vga_text(&work.0);
    assert!(
        vga.contains(ready),
        "ready line must also be on the VGA console tty0:\n{vga}"
    );

    vm.qmp(r#"{"execute":"system_powerdown"}"#);
    let t_off = vm.wait_exit(Duration::from_secs(30));
    let text = vm.text();
    assert!(
        text.contains("ramux: power button pressed (ACPI button/power LNXPWRBN:00)"),
        "{text}"
    );
    assert!(text.contains("ramux: powering off"), "{text}");
    assert!(
        text.contains("reboot: Power down"),
        "kernel must power down, not panic:\n{text}"
    );
    assert!(
        !text.contains("ramux: still running after"),
        "services and shells must stop on SIGTERM/SIGHUP:\n{text}"
    );
    assert!(
        !text.contains("ramux: failed ticker"),
        "a stop at shutdown is not a failure:\n{text}"
    );
    let tail: Vec<&str> = text.lines().rev().take(12).collect();
    eprintln!(
        "console tail:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    let up = text
        .lines()
        .find(|l| l.contains("ramux: up "))
        .unwrap_or("")
        .trim()
        .to_string();
    eprintln!(
        "BOOT-TIME qemu-start-to-ready={:.2}s guest: {up}; powerdown-to-exit={:.2}s",
        t_ready.as_secs_f64(),
        t_off.as_secs_f64()
    );
}

#[test]
fn bad_config_gives_emergency_shell_and_busybox_poweroff_works() {
    let work = workdir("emergency");
    let (kernel, initrd) = build_image(
        &work.0,
        "profile = \"x\"\nrole = \n",
        &[],
        MODULES_WITH_EVDEV,
    );
    let mut vm = Vm::boot(&work.0, &kernel, &initrd, false);
    vm.wait_for(
        "ramux: failed config: /etc/ramux/appliance.toml:2:",
        Duration::from_secs(120),
    );
    // The power button modules are loaded even without a config.
    vm.wait_for(
        "ramux: power button /dev/input/event",
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(1));
    vm.type_line("echo \"==SHELL$((2+3))\"");
    vm.wait_for("==SHELL5", Duration::from_secs(30));
    vm.type_line("poweroff");
    vm.wait_exit(Duration::from_secs(30));
    let text = vm.text();
    assert!(!text.contains("ramux: ready"), "{text}");
    assert!(text.contains("ramux: powering off"), "{text}");
    assert!(text.contains("reboot: Power down"), "{text}");
}
