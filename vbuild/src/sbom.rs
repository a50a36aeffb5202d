//! The SPDX 2.3 SBOM of one image (`<iso>.spdx.json`, docs/release.md).
//!
//! [`generate`] is pure: the manifest (as written) and the licenses found in the base give the
//! document, with no clock or host read, so two builds of the same inputs write the same bytes.
//! [`check`] is what `vbuild verify` asks of a published SBOM.

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where the SBOM of `iso` is: `<iso>.spdx.json` beside it.
pub fn path_for(iso: &Path) -> PathBuf {
    PathBuf::from(format!("{}.spdx.json", iso.display()))
}

pub const SPDX_VERSION: &str = "SPDX-2.3";
pub const SUFFIX: &str = ".spdx.json";
const NOASSERTION: &str = "NOASSERTION";
/// The license the ramux workspace declares for its own binaries.
const RAMUX_LICENSE: &str = env!("CARGO_PKG_LICENSE");

/// What the SBOM needs beyond the manifest.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Debian package name -> SPDX license expression, from its machine-readable
    /// `/usr/share/doc/<name>/copyright` ([`dep5_license`]). A package not here gets
    /// NOASSERTION.
    pub licenses: BTreeMap<String, String>,
}

/// Percent-encodes a purl component (everything but `A-Za-z0-9.-_~`): `1:2.0+dfsg-1` is
/// `1%3A2.0%2Bdfsg-1`.
fn purl_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `pkg:deb/debian/<name>@<version>?arch=<arch>&distro=<suite>` (purl-spec's deb type;
/// qualifiers sorted, each only when known).
pub fn deb_purl(name: &str, version: &str, arch: Option<&str>, suite: Option<&str>) -> String {
    let mut q = vec![];
    if let Some(a) = arch {
        q.push(format!("arch={}", purl_encode(a)));
    }
    if let Some(s) = suite {
        q.push(format!("distro={}", purl_encode(s)));
    }
    let mut p = format!(
        "pkg:deb/debian/{}@{}",
        purl_encode(&name.to_ascii_lowercase()),
        purl_encode(version)
    );
    if !q.is_empty() {
        p.push('?');
        p.push_str(&q.join("&"));
    }
    p
}

/// Hands out SPDX identifiers (`SPDXRef-` + `[A-Za-z0-9.-]`): other characters become `-`,
/// and a clash (`g++` and `g--`) gets `-2`, `-3`… in the order asked (callers ask sorted).
#[derive(Default)]
struct Ids(BTreeSet<String>);

impl Ids {
    fn make(&mut self, kind: &str, name: &str) -> String {
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let base = format!("SPDXRef-{kind}-{clean}");
        let mut id = base.clone();
        let mut n = 2;
        while !self.0.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }
}

/// SPDX `checksums` of a sha256 (none when unknown); a malformed one is a vbuild bug.
fn sha256_checksums(what: &str, sha: Option<&str>) -> Result<Value> {
    match sha {
        Some(s)
            if s.len() == 64
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(json!([{"algorithm": "SHA256", "checksumValue": s}]))
        }
        Some(s) => bail!("{what}: sha256 {s:?} is not 64 lower-case hex digits"),
        None => Ok(json!([])),
    }
}

/// The SBOM of the image the manifest `m` describes (pure; `m` is the manifest as written).
pub fn generate(m: &Value, extra: &Extra) -> Result<Value> {
    let iso = &m["outputs"]["iso"];
    let (Some(iso_name), Some(iso_sha)) = (iso["file"].as_str(), iso["sha256"].as_str()) else {
        bail!("the manifest has no outputs.iso file/sha256");
    };
    let epoch = m["build_clock"]["epoch"]
        .as_i64()
        .ok_or_else(|| anyhow!("the manifest has no build_clock.epoch"))?;
    let tool = m["tool_versions"]["vbuild"]
        .as_str()
        .unwrap_or(env!("CARGO_PKG_VERSION"));
    let suite = (m["base"]["kind"] == "debian")
        .then(|| m["base"]["suite"].as_str())
        .flatten();
    let mut ids = Ids::default();
    let iso_id = "SPDXRef-ISO".to_string();
    ids.0.insert(iso_id.clone());
    let mut packages = vec![json!({
        "SPDXID": iso_id,
        "name": iso_name,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "checksums": sha256_checksums(iso_name, Some(iso_sha))?,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "comment": format!(
            "ramux image: profile {}, role {}, host {}",
            m["profile"].as_str().unwrap_or(""),
            m["role"].as_str().unwrap_or(""),
            m["hostname"].as_str().unwrap_or("")
        ),
    })];

    let mut debs: Vec<&Value> = m["packages"].as_array().into_iter().flatten().collect();
    let key = |p: &Value| {
        (
            p["name"].as_str().unwrap_or("").to_string(),
            p["version"].as_str().unwrap_or("").to_string(),
        )
    };
    debs.sort_by_key(|p| key(p));
    for p in debs {
        let (name, version) = key(p);
        if name.is_empty() || version.is_empty() {
            bail!("the manifest lists a package without name or version: {p}");
        }
        let arch = p["arch"].as_str();
        packages.push(json!({
            "SPDXID": ids.make("deb", &name),
            "name": name,
            "versionInfo": version,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            "checksums": sha256_checksums(&name, p["sha256"].as_str())?,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": extra.licenses.get(&name).map(String::as_str).unwrap_or(NOASSERTION),
            "copyrightText": NOASSERTION,
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": deb_purl(&name, &version, arch, suite),
            }],
        }));
    }

    let bins = m["inputs"].as_object().into_iter().flatten();
    for (k, sha) in bins {
        let Some(name) = k.strip_prefix("bin/") else {
            continue;
        };
        packages.push(json!({
            "SPDXID": ids.make("bin", name),
            "name": name,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            "checksums": sha256_checksums(k, sha.as_str())?,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": RAMUX_LICENSE,
            "copyrightText": NOASSERTION,
            "primaryPackagePurpose": "APPLICATION",
            "comment": format!("ramux binary, /usr/sbin/{name} in the image"),
        }));
    }

    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-ISO",
    })];
    for p in &packages[1..] {
        relationships.push(json!({
            "spdxElementId": "SPDXRef-ISO",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": p["SPDXID"],
        }));
    }
    Ok(json!({
        "spdxVersion": SPDX_VERSION,
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": iso_name,
        "documentNamespace": format!("https://ramux.invalid/spdx/{iso_name}-{iso_sha}"),
        "creationInfo": {
            "created": crate::manifest::utc(epoch),
            "creators": [format!("Tool: vbuild-{tool}")],
        },
        "packages": packages,
        "relationships": relationships,
    }))
}

/// The file's bytes: pretty JSON and a final newline, like the manifest.
pub fn to_bytes(doc: &Value) -> Result<Vec<u8>> {
    let mut v = serde_json::to_vec_pretty(doc)?;
    v.push(b'\n');
    Ok(v)
}

/// The Debian packages (name, version) an SBOM lists: its packages with a `pkg:deb/` purl.
pub fn deb_packages(doc: &Value) -> BTreeSet<(String, String)> {
    let pkgs = doc["packages"].as_array().into_iter().flatten();
    pkgs.filter(|p| {
        let refs = p["externalRefs"].as_array().into_iter().flatten();
        refs.into_iter().any(|r| {
            r["referenceType"] == "purl"
                && r["referenceLocator"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("pkg:deb/"))
        })
    })
    .map(|p| {
        (
            p["name"].as_str().unwrap_or("").to_string(),
            p["versionInfo"].as_str().unwrap_or("").to_string(),
        )
    })
    .collect()
}

/// Checks the SBOM file `name` (parsed as `doc`) against its image's manifest `m` (pure): SPDX
/// 2.3, its ISO package has the manifest's ISO sha256, and it lists exactly the manifest's
/// Debian packages.
pub fn check(name: &str, doc: &Value, m: &Value) -> Result<()> {
    if doc["spdxVersion"] != SPDX_VERSION {
        bail!(
            "{name}: spdxVersion is {}, expected {SPDX_VERSION}",
            doc["spdxVersion"]
        );
    }
    let want_sha = m["outputs"]["iso"]["sha256"].as_str().unwrap_or("");
    let iso = doc["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["SPDXID"] == "SPDXRef-ISO")
        .ok_or_else(|| anyhow!("{name}: no SPDXRef-ISO package"))?;
    let sums = iso["checksums"].as_array().into_iter().flatten();
    if !sums
        .into_iter()
        .any(|c| c["algorithm"] == "SHA256" && c["checksumValue"] == want_sha)
    {
        bail!("{name}: its ISO package does not carry the manifest's ISO sha256 {want_sha}");
    }
    let listed = deb_packages(doc);
    let want: BTreeSet<(String, String)> = m["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["version"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    if listed != want {
        let show = |s: Vec<&(String, String)>| {
            let mut v: Vec<String> = s.iter().take(5).map(|(n, v)| format!("{n} {v}")).collect();
            if s.len() > 5 {
                v.push(format!("… {} more", s.len() - 5));
            }
            v.join(", ")
        };
        let missing = show(want.difference(&listed).collect());
        let extra = show(listed.difference(&want).collect());
        bail!(
            "{name}: its Debian packages differ from the manifest's (missing: [{missing}]; not in the manifest: [{extra}])"
        );
    }
    Ok(())
}

/// The SPDX identifier of a DEP-5 short license name, when there is one.
fn spdx_id(short: &str) -> Option<String> {
    let s = short.trim();
    let (base, later) = match s.strip_suffix('+') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let lower = base.to_ascii_lowercase();
    // The GNU family: GPL-2 / GPL-2.0 / GPL-2+ -> GPL-2.0-only / GPL-2.0-or-later.
    // Already SPDX: GPL-2.0-only, GPL-2.0-or-later.
    let (lower, later) = match lower.strip_suffix("-or-later") {
        Some(b) if !later => (b.to_string(), true),
        _ => (
            lower.strip_suffix("-only").unwrap_or(&lower).to_string(),
            later,
        ),
    };
    for fam in ["gpl", "lgpl", "agpl", "gfdl"] {
        if let Some(v) = lower.strip_prefix(fam).and_then(|r| r.strip_prefix('-')) {
            let v = match v {
                "1" | "1.0" => "1.0",
                "1.1" => "1.1",
                "1.2" => "1.2",
                "1.3" => "1.3",
                "2" | "2.0" => "2.0",
                "2.1" => "2.1",
                "3" | "3.0" => "3.0",
                _ => return None,
            };
            let ok = match fam {
                "gpl" => ["1.0", "2.0", "3.0"].contains(&v),
                "lgpl" => ["2.0", "2.1", "3.0"].contains(&v),
                "agpl" => v == "3.0",
                _ => ["1.1", "1.2", "1.3"].contains(&v),
            };
            let suffix = if later { "or-later" } else { "only" };
            return ok.then(|| format!("{}-{v}-{suffix}", fam.to_ascii_uppercase()));
        }
    }
    if later {
        return None;
    }
    const KNOWN: &[(&str, &str)] = &[
        ("expat", "MIT"),
        ("mit", "MIT"),
        ("isc", "ISC"),
        ("zlib", "Zlib"),
        ("apache-2.0", "Apache-2.0"),
        ("apache-2", "Apache-2.0"),
        ("bsd-2-clause", "BSD-2-Clause"),
        ("bsd-3-clause", "BSD-3-Clause"),
        ("bsd-4-clause", "BSD-4-Clause"),
        ("0bsd", "0BSD"),
        ("cc0-1.0", "CC0-1.0"),
        ("artistic-2.0", "Artistic-2.0"),
        ("mpl-1.1", "MPL-1.1"),
        ("mpl-2.0", "MPL-2.0"),
        ("bsl-1.0", "BSL-1.0"),
        ("python-2.0", "Python-2.0"),
        ("psf-2.0", "PSF-2.0"),
        ("openssl", "OpenSSL"),
        ("ssleay", "SSLeay-standalone"),
        ("curl", "curl"),
        ("x11", "X11"),
        ("ftl", "FTL"),
        ("unicode-dfs-2016", "Unicode-DFS-2016"),
        ("unlicense", "Unlicense"),
        ("wtfpl", "WTFPL"),
        ("beerware", "Beerware"),
        ("bzip2-1.0.6", "bzip2-1.0.6"),
        ("libpng", "Libpng"),
        ("libpng-2.0", "libpng-2.0"),
        ("ijg", "IJG"),
        ("ofl-1.1", "OFL-1.1"),
        ("sissl", "SISSL"),
        ("tcl", "TCL"),
        ("vim", "Vim"),
        ("info-zip", "Info-ZIP"),
        ("openldap-2.8", "OLDAP-2.8"),
        ("fsfullr", "FSFULLR"),
        ("fsful", "FSFUL"),
        ("fsfap", "FSFAP"),
        ("bsd-1-clause", "BSD-1-Clause"),
        ("jam", "Jam"),
        ("mpl-1.0", "MPL-1.0"),
        ("epl-1.0", "EPL-1.0"),
        ("epl-2.0", "EPL-2.0"),
        ("cc-by-3.0", "CC-BY-3.0"),
        ("cc-by-4.0", "CC-BY-4.0"),
        ("cc-by-sa-3.0", "CC-BY-SA-3.0"),
        ("cc-by-sa-4.0", "CC-BY-SA-4.0"),
        ("ntp", "NTP"),
        ("hpnd", "HPND"),
    ];
    KNOWN
        .iter()
        .find(|(k, _)| *k == lower)
        .map(|(_, v)| v.to_string())
}

/// A DEP-5 name, possibly `<license> with <name> exception`, as SPDX (`… WITH …`).
fn spdx_with(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let Some(i) = lower.find(" with ") else {
        return spdx_id(name);
    };
    let lic = spdx_id(&name[..i])?;
    let exc = lower[i + 6..].strip_suffix(" exception")?.trim();
    let id = match (exc, lic.starts_with("GPL-3")) {
        ("autoconf", false) => "Autoconf-exception-2.0",
        ("autoconf", true) => "Autoconf-exception-3.0",
        ("bison", _) => "Bison-exception-2.2",
        ("gcc", true) => "GCC-exception-3.1",
        ("classpath", _) => "Classpath-exception-2.0",
        ("libtool", _) => "Libtool-exception",
        ("font", _) => "Font-exception-2.0",
        _ => return None,
    };
    Some(format!("{lic} WITH {id}"))
}

/// One DEP-5 `License:` expression (`GPL-2+ or Artistic`) as SPDX, when every name maps and it
/// mixes no `and`/`or` (DEP-5 needs commas to group those; not handled).
fn spdx_expression(dep5: &str) -> Option<String> {
    let words: Vec<&str> = dep5.split_whitespace().collect();
    if words.is_empty() || dep5.contains(',') {
        return None;
    }
    let mut names = vec![];
    let mut op: Option<&str> = None;
    let mut cur = vec![];
    for w in words {
        let lw = w.to_ascii_lowercase();
        if lw == "or" || lw == "and" {
            if op.is_some_and(|o| o != lw) || cur.is_empty() {
                return None;
            }
            op = Some(if lw == "or" { "or" } else { "and" });
            names.push(cur.join(" "));
            cur.clear();
        } else {
            cur.push(w);
        }
    }
    names.push(cur.join(" "));
    let ids: Option<Vec<String>> = names.iter().map(|n| spdx_with(n)).collect();
    let ids = ids?;
    Some(match (op, ids.len()) {
        (_, 1) => ids[0].clone(),
        (Some("or"), _) => format!("({})", ids.join(" OR ")),
        _ => format!("({})", ids.join(" AND ")),
    })
}

/// The SPDX license expression of a machine-readable (DEP-5) `debian/copyright`: the licenses
/// of its `Files:` paragraphs, joined with AND. None when the file is not DEP-5 or a license
/// has no SPDX identifier here (the SBOM then says NOASSERTION).
pub fn dep5_license(text: &str) -> Option<String> {
    let text = text.replace("\r\n", "\n");
    let mut paras = text
        .split('\n')
        .collect::<Vec<_>>()
        .split(|l| l.trim().is_empty())
        .filter(|p| !p.is_empty())
        .map(|p| p.to_vec())
        .collect::<Vec<_>>()
        .into_iter();
    let header = paras.next()?;
    let field = |p: &[&str], k: &str| {
        p.iter().find_map(|l| {
            let (f, v) = l.split_once(':')?;
            (!l.starts_with([' ', '\t']) && f.eq_ignore_ascii_case(k)).then(|| v.trim().to_string())
        })
    };
    let format = field(&header, "Format")?;
    if !(format.contains("copyright-format/1.0") || format.contains("dep.debian.net/deps/dep5")) {
        return None;
    }
    let mut out = BTreeSet::new();
    for p in paras {
        if field(&p, "Files").is_none() {
            continue;
        }
        let lic = field(&p, "License")?;
        out.insert(spdx_expression(&lic)?);
    }
    if out.is_empty() {
        return None;
    }
    let v: Vec<String> = out.into_iter().collect();
    Some(if v.len() == 1 {
        v[0].trim_start_matches('(')
            .trim_end_matches(')')
            .to_string()
    } else {
        v.join(" AND ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn fixture() -> Value {
        json!({
            "format": "ramux-manifest-1",
            "profile": "router", "role": "MASTER", "hostname": "router-master",
            "build_clock": {"epoch": 1_700_000_000, "utc": "2023-11-14T22:13:20Z", "source": "source-date-epoch"},
            "base": {"kind": "debian", "suite": "bookworm"},
            "inputs": {"bin/vrrpd": "b".repeat(64), "bin/ramux-init": "a".repeat(64), "profiles/router/profile.toml": "cc"},
            "packages": [
                {"name": "zlib1g", "version": "1:1.2.13.dfsg-1", "arch": "amd64", "sha256": "1".repeat(64)},
                {"name": "libstdc++6", "version": "12.2.0-14", "arch": "amd64"},
                {"name": "busybox", "version": "1:1.35.0-4+b3"}
            ],
            "tool_versions": {"vbuild": "0.1.0"},
            "outputs": {"iso": {"file": "router-master.iso", "sha256": "e".repeat(64), "size": 3}}
        })
    }

    #[test]
    fn generated_document() {
        let mut extra = Extra::default();
        extra.licenses.insert("zlib1g".into(), "Zlib".into());
        let d = generate(&fixture(), &extra).unwrap();
        assert_eq!(d["spdxVersion"], "SPDX-2.3");
        assert_eq!(d["dataLicense"], "CC0-1.0");
        assert_eq!(
            d["documentNamespace"],
            format!(
                "https://ramux.invalid/spdx/router-master.iso-{}",
                "e".repeat(64)
            )
        );
        assert_eq!(d["creationInfo"]["created"], "2023-11-14T22:13:20Z");
        assert_eq!(d["creationInfo"]["creators"], json!(["Tool: vbuild-0.1.0"]));
        let p = d["packages"].as_array().unwrap();
        let names: Vec<&str> = p.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "router-master.iso",
                "busybox",
                "libstdc++6",
                "zlib1g",
                "ramux-init",
                "vrrpd"
            ]
        );
        assert_eq!(p[0]["checksums"][0]["checksumValue"], "e".repeat(64));
        assert_eq!(p[2]["SPDXID"], "SPDXRef-deb-libstdc--6");
        assert_eq!(
            p[2]["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=bookworm"
        );
        assert_eq!(
            p[1]["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/busybox@1%3A1.35.0-4%2Bb3?distro=bookworm"
        );
        assert_eq!(p[3]["licenseDeclared"], "Zlib");
        assert_eq!(p[3]["checksums"][0]["checksumValue"], "1".repeat(64));
        assert_eq!(p[2]["licenseDeclared"], "NOASSERTION");
        assert_eq!(p[2]["checksums"], json!([]));
        assert_eq!(p[4]["checksums"][0]["checksumValue"], "a".repeat(64));
        let mut bad = fixture();
        bad["inputs"]["bin/vrrpd"] = "zz".into();
        let e = generate(&bad, &extra).unwrap_err().to_string();
        assert!(e.contains("bin/vrrpd"), "{e}");
        assert_eq!(p[4]["licenseDeclared"], "MIT OR Apache-2.0");
        let r = d["relationships"].as_array().unwrap();
        assert_eq!(r.len(), 6);
        assert_eq!(r[0]["relationshipType"], "DESCRIBES");
        assert!(r[1..]
            .iter()
            .all(|r| r["relationshipType"] == "CONTAINS" && r["spdxElementId"] == "SPDXRef-ISO"));
        // Pure and stable: the same input gives the same bytes.
        let again = generate(&fixture(), &extra).unwrap();
        assert_eq!(to_bytes(&d).unwrap(), to_bytes(&again).unwrap());
        check("x.spdx.json", &d, &fixture()).unwrap();
    }

    #[test]
    fn ids_stay_unique() {
        let mut ids = Ids::default();
        assert_eq!(ids.make("deb", "g++"), "SPDXRef-deb-g--");
        assert_eq!(ids.make("deb", "g--"), "SPDXRef-deb-g---2");
    }

    #[test]
    fn check_refuses_a_dropped_package_and_another_iso() {
        let m = fixture();
        let mut d = generate(&m, &Extra::default()).unwrap();
        d["packages"].as_array_mut().unwrap().remove(2);
        let e = check("r.spdx.json", &d, &m).unwrap_err().to_string();
        assert!(
            e.contains("r.spdx.json") && e.contains("missing: [libstdc++6 12.2.0-14]"),
            "{e}"
        );
        let mut d = generate(&m, &Extra::default()).unwrap();
        d["packages"][0]["checksums"][0]["checksumValue"] = "ff".into();
        assert!(check("r", &d, &m).is_err());
        let mut d = generate(&m, &Extra::default()).unwrap();
        d["spdxVersion"] = "SPDX-2.2".into();
        assert!(check("r", &d, &m)
            .unwrap_err()
            .to_string()
            .contains("SPDX-2.2"));
    }

    #[test]
    fn dep5_licenses() {
        let f = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\nFiles: *\nCopyright: 2000 A\nLicense: GPL-2+\n\nFiles: lib/*\nCopyright: 2001 B\nLicense: LGPL-2.1+ or Expat\n\nLicense: GPL-2+\n On Debian systems see /usr/share/common-licenses/GPL-2.\n";
        assert_eq!(
            dep5_license(f).as_deref(),
            Some("(LGPL-2.1-or-later OR MIT) AND GPL-2.0-or-later")
        );
        let one = "Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0\n\nFiles: *\nLicense: Zlib\n";
        assert_eq!(dep5_license(one).as_deref(), Some("Zlib"));
        let or = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-1+ or Artistic-2.0\n";
        assert_eq!(
            dep5_license(or).as_deref(),
            Some("GPL-1.0-or-later OR Artistic-2.0")
        );
        // Not machine-readable, an unknown name, a comma-grouped expression: no assertion.
        assert_eq!(dep5_license("This package was debianized by…\n"), None);
        let unknown = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: public-domain\n";
        assert_eq!(dep5_license(unknown), None);
        let comma = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+ or Artistic-2.0, and BSD-3-clause\n";
        assert_eq!(dep5_license(comma), None);
        assert_eq!(spdx_id("GPL-3"), Some("GPL-3.0-only".into()));
        assert_eq!(spdx_id("LGPL-2+"), Some("LGPL-2.0-or-later".into()));
        assert_eq!(spdx_id("GPL-4"), None);
        assert_eq!(spdx_id("BSD-3-clause"), Some("BSD-3-Clause".into()));
        assert_eq!(spdx_id("GPL-2.0-or-later"), Some("GPL-2.0-or-later".into()));
        assert_eq!(spdx_id("LGPL-2.1-only"), Some("LGPL-2.1-only".into()));
        assert_eq!(spdx_id("OpenLDAP-2.8"), Some("OLDAP-2.8".into()));
        assert_eq!(
            spdx_with("GPL-2+ with Autoconf exception").as_deref(),
            Some("GPL-2.0-or-later WITH Autoconf-exception-2.0")
        );
        assert_eq!(spdx_with("GPL-2+ with OpenSSL exception"), None);
        assert_eq!(
            spdx_expression("GPL-3+ with Bison exception or MIT").as_deref(),
            Some("(GPL-3.0-or-later WITH Bison-exception-2.2 OR MIT)")
        );
    }
}
