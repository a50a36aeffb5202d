//! Fixtures for the tests that boot tiny QEMU guests of their own (init's boot tests, the
//! switch's VLAN guests): Debian's kernel package, downloaded with `apt-get download` and
//! extracted once into the checkout's git-ignored `images/cache/test-kernel/`, and a module
//! closure computed by vbuild's own resolver (so softdeps are followed exactly as in images).
//!
//! Tests fail, never skip, when a tool is missing: the message names the Debian package.
//!
//! The tests' QEMU command lines and QMP sessions are vlaunch's own ([`vlaunch::qemu`],
//! [`vlaunch::qmp`], re-exported as [`vlaunch`] so a test crate needs no dependency of its
//! own), and the network namespaces they make are all [`Netns`].

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vbuild::closure::ModuleDb;

pub use vlaunch;

/// The one network-namespace guard of the tests: labwall's own (`labwall check --backend`
/// loads rulesets in one, and its `add_standins`/`apply_sysctl`, which labwall's tests drive,
/// take it), re-exported so every crate's tests make, use and remove namespaces the same way.
/// `Netns::new(name)` deletes a stale namespace of that name first, `exec(argv)` runs a
/// command inside, and dropping it deletes the namespace, also when a test panics.
pub use labwall::backend::Netns;

/// A fresh [`Netns`] `name` with `lo` up; panics (naming iproute2) if it cannot be made.
pub fn netns(name: &str) -> Netns {
    let ns =
        Netns::new(name).unwrap_or_else(|e| panic!("netns {name} (needs root and iproute2): {e}"));
    ns.exec(&["ip", "link", "set", "lo", "up"])
        .unwrap_or_else(|e| panic!("lo up in netns {name}: {e}"));
    ns
}

/// Runs the shell command `cmd` inside `ns` and returns its output, whatever the exit status.
pub fn netns_sh(ns: &Netns, cmd: &str) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", &ns.name, "sh", "-c", cmd])
        .output()
        .unwrap_or_else(|e| panic!("ip netns exec {} sh -c {cmd:?}: {e}", ns.name))
}

/// A negotiated QMP session with a QEMU started moments ago: QEMU creates its socket during
/// start-up, so this retries until the socket accepts, for up to `within`. Every later read
/// and write has a 10 s timeout.
pub fn qmp_connect(socket: &Path, within: Duration) -> vlaunch::qmp::Qmp {
    let deadline = Instant::now() + within;
    loop {
        match vlaunch::qmp::Qmp::connect(socket, Duration::from_secs(10)) {
            Ok(q) => return q,
            Err(e) if Instant::now() >= deadline => {
                panic!("QMP {} within {within:?}: {e:#}", socket.display())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The kernel release the fixtures boot (the one vbuild's images carry on bookworm-security).
pub const KREL: &str = "6.1.0-56-amd64";
/// Its Debian package.
pub const KPKG: &str = "linux-image-6.1.0-56-amd64";

/// The checkout root (this crate lives in `<root>/ramux-testkit`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ramux-testkit/ has a parent")
        .to_path_buf()
}

/// Absolute path of a host tool, or a panic naming the Debian package that provides it.
pub fn require(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{tool}` not found: apt-get install {package}"))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The extracted kernel package (`boot/vmlinuz-KREL`, `lib/modules/KREL/` with `modules.dep`),
/// downloaded once. Extraction goes to a per-process temp dir renamed into place, so concurrent
/// test processes never see half a tree. The package has no modules.dep (its postinst makes
/// it), so `depmod -b` runs here.
pub fn kernel_tree() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cache = workspace_root().join("images/cache/test-kernel");
    let tree = cache.join(KPKG);
    let ready = |t: &Path| t.join(format!("lib/modules/{KREL}/modules.dep")).exists();
    if ready(&tree) {
        return tree;
    }
    fs::create_dir_all(&cache).unwrap();
    let tmp = cache.join(format!(".{KPKG}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(tmp.join("x")).unwrap();
    let apt = require("apt-get", "apt");
    let download = || {
        Command::new(&apt)
            .args(["download", KPKG])
            .current_dir(&tmp)
            .output()
            .unwrap()
    };
    eprintln!(
        "testkit: downloading {KPKG} (once, into {})",
        cache.display()
    );
    let mut out = download();
    if !out.status.success() {
        // A fresh machine may have no package lists yet (CI runs as root).
        let _ = Command::new(&apt).args(["update", "-qq"]).status();
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
    run(Command::new(require("dpkg-deb", "dpkg"))
        .arg("-x")
        .arg(&deb)
        .arg(tmp.join("x")));
    run(Command::new(require("depmod", "kmod"))
        .arg("-b")
        .arg(tmp.join("x"))
        .arg(KREL));
    if fs::rename(tmp.join("x"), &tree).is_err() {
        // Another process placed it first.
        assert!(ready(&tree), "could not place {}", tree.display());
    }
    let _ = fs::remove_dir_all(&tmp);
    tree
}

/// Paths (relative to `lib/modules/KREL/`) of the modules `wanted` (names as the kernel spells
/// them, e.g. `virtio_net`) and everything they need, in load order: vbuild's resolver, with
/// modules.dep dependencies and modules.softdep `pre:` entries first.
pub fn module_closure(tree: &Path, wanted: &[&str]) -> Vec<String> {
    let dir = tree.join(format!("lib/modules/{KREL}"));
    let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap_or_default();
    let db = ModuleDb::parse(
        &read("modules.dep"),
        &read("modules.softdep"),
        &read("modules.alias"),
        &read("modules.builtin"),
    );
    let wanted: Vec<String> = wanted.iter().map(|w| w.to_string()).collect();
    db.closure(&wanted)
        .unwrap_or_else(|e| panic!("module closure in {}: {e}", dir.display()))
        .order
}
