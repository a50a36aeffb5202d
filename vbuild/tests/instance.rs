//! Instance images of the dns profile (docs/dns.md): two builds of dns1 are byte-identical, and
//! dns1 and dns2 differ only where the instance shows (host name, `instance`, outputs).
//!
//! Needs what vbuild/tests/build.rs needs: host tools, the Debian mirror on a cold cache, and
//! the static ramux-init in $RAMUX_BIN_DIR.

use std::path::{Path, PathBuf};
use vbuild::{build_iso, BuildRequest};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

fn build(instance: &str, out: &Path) -> (vbuild::BuildReport, serde_json::Value) {
    let root = repo_root();
    let bin =
        std::env::var_os("RAMUX_BIN_DIR").expect("RAMUX_BIN_DIR is not set: run scripts/build");
    let r = build_iso(&BuildRequest {
        root: root.clone(),
        profile: "dns".into(),
        sets: vec![("instance".into(), instance.into())],
        site: Some(root.join("labwall/tests/sites/dns/site.lw")),
        out: Some(out.to_path_buf()),
        bin_dir: Some(bin.into()),
        cache_dir: Some(root.join("images/cache")),
        epoch: Some(1_700_000_000),
        quiet: true,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("dns {instance}: {e:#}"));
    let m = serde_json::from_str(&std::fs::read_to_string(&r.manifest).unwrap()).unwrap();
    (r, m)
}

#[test]
fn dns_instances_are_reproducible_and_differ_only_by_instance() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, ma) = build("dns1", &tmp.path().join("a/dns1.iso"));
    let (b, mb) = build("dns1", &tmp.path().join("b/dns1.iso"));
    assert_eq!(a.sha256, b.sha256, "two builds of dns1 differ");
    assert_eq!(ma, mb);
    assert_eq!((a.hostname.as_str(), a.role.as_str()), ("dns1", "-"));
    let (two, m2) = build("dns2", &tmp.path().join("c/dns2.iso"));
    assert_eq!(two.hostname, "dns2");
    assert_ne!(a.sha256, two.sha256);
    let keys = |m: &serde_json::Value| m.as_object().unwrap().clone();
    let (k1, k2) = (keys(&ma), keys(&m2));
    let differ: Vec<&str> = k1
        .iter()
        .filter(|(k, v)| k2.get(*k) != Some(v))
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        differ,
        ["hostname", "outputs", "set"],
        "manifests differ in more"
    );
    assert_eq!(m2["set"]["instance"], "dns2");
    // The initrd's base layer is shared: only the top layer (site files, appliance.toml) differs.
    assert_eq!(ma["outputs"]["initrd-base"], m2["outputs"]["initrd-base"]);
    assert_ne!(ma["outputs"]["initrd-top"], m2["outputs"]["initrd-top"]);
}
