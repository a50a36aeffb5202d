//! Kernel module closure: which `.ko` files an image needs, in load order.
//!
//! Input is the text of `modules.dep`, `modules.softdep`, `modules.alias` and `modules.builtin`
//! (as written by `depmod -b`); output is the list of module paths relative to
//! `/lib/modules/<release>/`, dependencies and `pre:` soft dependencies first. Busybox `modprobe`
//! ignores softdeps (`nf_tables` then fails on `libcrc32c`; docs/builder.md), so ramux-init loads
//! this explicit list instead. Pure: no file system access, so it is unit-tested on literal text.

use std::collections::{BTreeMap, BTreeSet};

/// Canonical module name: basename without `.ko[.xz|.zst|.gz]`, `-` mapped to `_`.
pub fn module_name(path_or_name: &str) -> String {
    let base = path_or_name.rsplit('/').next().unwrap_or(path_or_name);
    let base = [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .find_map(|s| base.strip_suffix(s))
        .unwrap_or(base);
    base.replace('-', "_")
}

/// Parsed depmod output.
#[derive(Debug, Default, Clone)]
pub struct ModuleDb {
    /// name -> (path, direct dependencies as names)
    deps: BTreeMap<String, (String, Vec<String>)>,
    /// name -> (pre, post) soft dependencies (names or aliases)
    softdeps: BTreeMap<String, (Vec<String>, Vec<String>)>,
    /// exact alias -> module names
    aliases: BTreeMap<String, BTreeSet<String>>,
    builtin: BTreeSet<String>,
}

/// Result of a closure computation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    /// Paths relative to /lib/modules/<release>/, in load order.
    pub order: Vec<String>,
    /// Wanted names that are built into the kernel (nothing to load).
    pub builtin: Vec<String>,
}

impl ModuleDb {
    pub fn parse(dep: &str, softdep: &str, alias: &str, builtin: &str) -> Self {
        let mut db = ModuleDb::default();
        for line in dep.lines() {
            let Some((path, rest)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            if path.is_empty() {
                continue;
            }
            let deps = rest.split_whitespace().map(module_name).collect();
            db.deps.insert(module_name(path), (path.to_string(), deps));
        }
        for line in softdep.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(name) = words.next() else { continue };
            let entry = db.softdeps.entry(module_name(name)).or_default();
            let mut list: Option<bool> = None; // Some(true)=pre, Some(false)=post
            for w in words {
                match w {
                    "pre:" => list = Some(true),
                    "post:" => list = Some(false),
                    // kmod ignores words before a pre:/post: marker
                    _ => match list {
                        Some(true) => entry.0.push(w.to_string()),
                        Some(false) => entry.1.push(w.to_string()),
                        None => {}
                    },
                }
            }
        }
        for line in alias.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("alias") {
                continue;
            }
            if let (Some(a), Some(m)) = (words.next(), words.next()) {
                if !a.contains(['*', '?', '[']) {
                    db.aliases
                        .entry(a.to_string())
                        .or_default()
                        .insert(module_name(m));
                }
            }
        }
        for line in builtin.lines() {
            let l = line.trim();
            if !l.is_empty() {
                db.builtin.insert(module_name(l));
            }
        }
        db
    }

    /// Number of loadable modules known.
    pub fn len(&self) -> usize {
        self.deps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    /// Module names a softdep word stands for: itself if it is a module, else its exact aliases.
    fn resolve(&self, word: &str) -> Vec<String> {
        let n = module_name(word);
        if self.deps.contains_key(&n) {
            return vec![n];
        }
        self.aliases
            .get(word)
            .map(|s| {
                s.iter()
                    .filter(|m| self.deps.contains_key(*m))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Closure of `wanted` in load order. Wanted names that are neither loadable nor built in
    /// are an error listing all of them.
    pub fn closure(&self, wanted: &[String]) -> Result<Closure, String> {
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        let mut builtin = Vec::new();
        let mut missing = Vec::new();
        for w in wanted {
            let n = module_name(w);
            if self.deps.contains_key(&n) {
                self.visit(&n, &mut done, &mut BTreeSet::new(), &mut order);
            } else if self.builtin.contains(&n) {
                builtin.push(n);
            } else {
                let alt = self.resolve(w);
                if alt.is_empty() {
                    missing.push(w.clone());
                }
                for a in alt {
                    self.visit(&a, &mut done, &mut BTreeSet::new(), &mut order);
                }
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "kernel modules not found (neither in modules.dep nor modules.builtin): {}",
                missing.join(", ")
            ));
        }
        Ok(Closure { order, builtin })
    }

    /// Depth-first post-order: pre softdeps, hard deps, the module, then post softdeps.
    fn visit(
        &self,
        n: &str,
        done: &mut BTreeSet<String>,
        stack: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if done.contains(n) || !stack.insert(n.to_string()) {
            return;
        }
        let Some((path, deps)) = self.deps.get(n) else {
            return;
        };
        let (pre, post) = self.softdeps.get(n).cloned().unwrap_or_default();
        for p in &pre {
            for m in self.resolve(p) {
                self.visit(&m, done, stack, order);
            }
        }
        // modules.dep lists the full transitive set; visiting each keeps their own order right.
        for d in deps {
            self.visit(d, done, stack, order);
        }
        stack.remove(n);
        if done.insert(n.to_string()) {
            order.push(path.clone());
        }
        for p in &post {
            for m in self.resolve(p) {
                self.visit(&m, done, stack, order);
            }
        }
    }
}

/// Fuzz body: arbitrary depmod-like text (four sections split by NUL bytes) and the names of
/// its first lines as wanted modules; must not panic or loop.
pub fn fuzz_closure(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let (dep, soft, alias, builtin) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let db = ModuleDb::parse(dep, soft, alias, builtin);
    let wanted: Vec<String> = dep
        .lines()
        .take(8)
        .filter_map(|l| l.split(':').next())
        .map(module_name)
        .collect();
    if let Ok(c) = db.closure(&wanted) {
        let set: BTreeSet<&String> = c.order.iter().collect();
        assert_eq!(set.len(), c.order.len(), "duplicate module in closure");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/net/netfilter/nft_masq.ko: kernel/net/netfilter/nf_nat.ko kernel/net/netfilter/nf_tables.ko kernel/net/netfilter/nf_conntrack.ko kernel/net/netfilter/nfnetlink.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nf_nat.ko: kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nf_tables.ko: kernel/net/netfilter/nfnetlink.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nf_conntrack.ko: kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nfnetlink.ko:
kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko:
kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko:
kernel/lib/libcrc32c.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/net/8021q/8021q.ko: kernel/net/802/garp.ko kernel/net/802/mrp.ko kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/garp.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/mrp.ko:
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
kernel/a/cyc1.ko: kernel/a/cyc2.ko
kernel/a/cyc2.ko: kernel/a/cyc1.ko
";
    const SOFT: &str = "# Soft dependencies extracted from modules themselves.\n\
softdep libcrc32c pre: crc32c\nsoftdep cifs gcm\nsoftdep nf_conntrack post: nonexistent\n";
    const ALIAS: &str = "alias crc32c crc32c_intel\nalias crc32c crc32c_generic\nalias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_net\n";
    const BUILTIN: &str = "kernel/net/packet/af_packet.ko\nkernel/drivers/acpi/button.ko\n";

    fn db() -> ModuleDb {
        ModuleDb::parse(DEP, SOFT, ALIAS, BUILTIN)
    }

    fn names(c: &Closure) -> Vec<String> {
        c.order.iter().map(|p| module_name(p)).collect()
    }

    fn pos(v: &[String], n: &str) -> usize {
        v.iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("{n} missing from {v:?}"))
    }

    #[test]
    fn names_are_canonical() {
        assert_eq!(
            module_name("kernel/arch/x86/crypto/crc32c-intel.ko"),
            "crc32c_intel"
        );
        assert_eq!(module_name("foo/bar-baz.ko.zst"), "bar_baz");
        assert_eq!(module_name("nf_tables"), "nf_tables");
    }

    /// Matches `modprobe -S 6.1.0-56-amd64 --show-depends nft_masq`.
    #[test]
    fn nft_masq_closure_matches_modprobe() {
        let c = db().closure(&["nft_masq".into()]).unwrap();
        let n = names(&c);
        let mut got = n.clone();
        got.sort();
        let mut want: Vec<String> = [
            "crc32c_intel",
            "crc32c_generic",
            "libcrc32c",
            "nf_defrag_ipv4",
            "nf_defrag_ipv6",
            "nf_conntrack",
            "nf_nat",
            "nfnetlink",
            "nf_tables",
            "nft_masq",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        want.sort();
        assert_eq!(got, want);
        // softdep pre: first, then the module, deps before dependents
        assert!(pos(&n, "crc32c_intel") < pos(&n, "libcrc32c"));
        assert!(pos(&n, "crc32c_generic") < pos(&n, "libcrc32c"));
        assert!(pos(&n, "libcrc32c") < pos(&n, "nf_conntrack"));
        assert!(pos(&n, "nf_conntrack") < pos(&n, "nf_nat"));
        assert!(pos(&n, "nfnetlink") < pos(&n, "nf_tables"));
        assert_eq!(n.last().unwrap(), "nft_masq");
    }

    #[test]
    fn each_module_once_and_deps_first() {
        let want: Vec<String> = ["virtio_net", "8021q", "nft_masq", "nf_tables", "virtio-net"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = db().closure(&want).unwrap();
        let n = names(&c);
        let set: BTreeSet<_> = n.iter().collect();
        assert_eq!(set.len(), n.len(), "duplicates in {n:?}");
        assert!(pos(&n, "failover") < pos(&n, "net_failover"));
        assert!(pos(&n, "net_failover") < pos(&n, "virtio_net"));
        assert!(pos(&n, "llc") < pos(&n, "stp"));
        assert!(pos(&n, "stp") < pos(&n, "garp"));
        assert!(pos(&n, "garp") < pos(&n, "8021q"));
        assert_eq!(c.order[pos(&n, "8021q")], "kernel/net/8021q/8021q.ko");
    }

    #[test]
    fn builtin_and_missing() {
        let c = db()
            .closure(&["af_packet".into(), "button".into()])
            .unwrap();
        assert!(c.order.is_empty());
        assert_eq!(c.builtin, vec!["af_packet", "button"]);
        let e = db()
            .closure(&["nosuch".into(), "virtio_net".into(), "alsonot".into()])
            .unwrap_err();
        assert!(e.contains("nosuch") && e.contains("alsonot"), "{e}");
    }

    #[test]
    fn alias_and_cycle() {
        let c = db().closure(&["crc32c".into()]).unwrap();
        assert_eq!(names(&c), vec!["crc32c_generic", "crc32c_intel"]);
        let c = db().closure(&["cyc1".into()]).unwrap();
        assert_eq!(names(&c), vec!["cyc2", "cyc1"]);
    }

    #[test]
    fn fuzz_body_on_samples() {
        fuzz_closure(format!("{DEP}\0{SOFT}\0{ALIAS}\0{BUILTIN}").as_bytes());
        fuzz_closure(b"a.ko: b.ko\nb.ko: a.ko c.ko\n\0softdep a pre: b post: a\0alias b a\0");
        fuzz_closure(b":\n::\n\0softdep\0alias\0\n");
        fuzz_closure(&[0xff, 0xfe, b':', 0]);
    }

    #[test]
    fn deterministic() {
        let w: Vec<String> = vec!["8021q".into(), "virtio_net".into(), "nft_masq".into()];
        assert_eq!(db().closure(&w).unwrap(), db().closure(&w).unwrap());
    }
}
