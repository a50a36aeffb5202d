//! FreeRADIUS configuration generated from the site's services: golden files, then the real
//! thing. Debian's freeradius runs with a copy of /etc/freeradius/3.0 plus the generated files,
//! started by overlays/dns/usr/sbin/ramux-radius-start from throwaway secrets made here
//! (openssl: CA, server and client certificates, MD4 NT hashes), in a network namespace; the
//! clients are Debian's radclient and eapol_test. Needs root.
//! Regenerate the golden files with LABWALL_BLESS=1 cargo test -p labwall --test radius.
//! Measurements: cargo test -p labwall --release --test radius -- --ignored --nocapture

use labwall::aaa::radius::{freeradius_files, freeradius_files_with, Options};
use labwall::aaa::{Identity, IdentityKind, MacVlan, Nas, Services, VpnUser};
use labwall::backend::Netns;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PORT_NAS: &str = "127.0.0.1";
const VPN_NAS: &str = "10.99.0.1";
const SW_SECRET: &str = "sw-S3cret'\"${y}$x";
const VPN_SECRET: &str = "vpn-Secret-9c4e1f";

fn services() -> Services {
    let nas = |name: &str, addr: &str, secret: &str, vpn, line| Nas {
        name: name.into(),
        addr: addr.parse().unwrap(),
        secret: secret.into(),
        vpn,
        line,
    };
    let id = |name: &str, kind, vlan, line| Identity {
        name: name.into(),
        kind,
        vlan,
        line,
    };
    Services {
        nas: vec![
            nas("sw1", PORT_NAS, "sw1", false, 10),
            nas("vpn1", VPN_NAS, "vpn", true, 11),
        ],
        mab: vec![
            MacVlan {
                mac: [0x52, 0x54, 0, 0x10, 0, 0x50],
                vlan: 10,
                line: 20,
            },
            MacVlan {
                mac: [0x52, 0x54, 0, 0x20, 0, 0x50],
                vlan: 20,
                line: 21,
            },
        ],
        dot1x: vec![
            id("alice", IdentityKind::User, 10, 30),
            id("bob", IdentityKind::User, 20, 31),
            id("alice-tls", IdentityKind::CertCn, 10, 32),
            id("carol-tls", IdentityKind::CertCn, 20, 33),
        ],
        vpn_users: vec![VpnUser {
            cn: "alice".into(),
            vlan: 10,
            addr: "10.10.0.130".parse().unwrap(),
            line: 40,
        }],
        ..Services::default()
    }
}

fn options(secrets: &Path, run: &Path) -> Options {
    Options {
        secrets_dir: secrets.display().to_string(),
        run_dir: run.display().to_string(),
        vlan_prefix: BTreeMap::from([(10, 24), (20, 24)]),
    }
}

// ---- generator ----

#[test]
fn golden_files() {
    let files = freeradius_files_with(
        &services(),
        &options(
            Path::new("/run/ramux/secrets"),
            Path::new("/run/freeradius/ramux"),
        ),
    )
    .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/radius");
    let bless = std::env::var("LABWALL_BLESS").is_ok_and(|v| v == "1");
    for (path, text) in files {
        let p = dir.join(path.replace('/', "__"));
        if bless {
            fs::write(&p, &text).unwrap();
        }
        let want = fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e} (LABWALL_BLESS=1 to create)", p.display()));
        assert_eq!(
            text,
            want,
            "{path} differs from {} (LABWALL_BLESS=1 to regenerate)",
            p.display()
        );
    }
}

#[test]
fn default_paths_and_no_secret_in_output() {
    let files = freeradius_files(&services(), "/run/ramux/secrets").unwrap();
    let all: String = files.iter().map(|(_, t)| t.as_str()).collect();
    assert!(!all.contains(SW_SECRET) && !all.contains(VPN_SECRET));
    let secret_item = |l: &str| {
        l.trim_start()
            .strip_prefix("secret")
            .is_some_and(|r| r.trim_start().starts_with('='))
    };
    assert!(
        !all.lines().any(secret_item),
        "a secret = line in the output"
    );
    let clients = &files.iter().find(|(p, _)| p == "clients.conf").unwrap().1;
    assert!(clients.contains("$INCLUDE /run/freeradius/ramux/nas/sw1.conf"));
    assert_eq!(
        clients
            .matches("require_message_authenticator = yes")
            .count(),
        2
    );
    let eap = &files
        .iter()
        .find(|(p, _)| p == "mods-enabled/eap")
        .unwrap()
        .1;
    let tls_config = eap
        .split_once("tls-config tls-common {")
        .unwrap()
        .1
        .split("\n\t}\n")
        .next()
        .unwrap();
    assert!(
        tls_config.contains("check_cert_cn = %{User-Name}"),
        "check_cert_cn outside tls-config"
    );
}

#[test]
fn bad_services_refused() {
    let mut s = services();
    s.dot1x[1].name = "bob\" Auth-Type := Accept".into();
    let e = freeradius_files(&s, "/run/ramux/secrets").unwrap_err();
    assert!(e.contains("line 31"), "{e}");
    let mut s = services();
    s.mab[1].mac = s.mab[0].mac;
    let e = freeradius_files(&s, "/run/ramux/secrets").unwrap_err();
    assert!(
        e.contains("52-54-00-10-00-50 already given on line 20"),
        "{e}"
    );
    let mut s = services();
    s.nas[0].secret = "../../etc/shadow".into();
    assert!(freeradius_files(&s, "/run/ramux/secrets").is_err());
}

// ---- the real FreeRADIUS ----

fn need(tool: &str, pkg: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} not found: install the Debian package {pkg} (scripts/prereqs)"
    );
}

fn sh(cmd: &str) -> Output {
    Command::new("sh").args(["-c", cmd]).output().unwrap()
}

fn start_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../overlays/dns/usr/sbin/ramux-radius-start")
}

/// A scratch directory under /tmp (traversable by freerad), removed on drop.
struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn scratch(tag: &str) -> Scratch {
    let d = PathBuf::from(format!("/tmp/ramux-radius-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    Scratch(d)
}

fn secret_file(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
}

/// MD4 of the UTF-16LE password (OpenSSL 3 keeps MD4 in its legacy provider).
fn nt_hash(pw: &str) -> String {
    let o = sh(&format!("printf %s '{pw}' | iconv -t UTF-16LE | openssl dgst -md4 -provider legacy -provider default -r"));
    assert!(
        o.status.success(),
        "openssl md4: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

/// A throwaway CA, the server's certificate and three client certificates (CN alice-tls,
/// carol-tls, and mallory-tls who is no site identity), in `dir/pki` (secrets layout) and `dir/clients`.
fn make_pki(dir: &Path) {
    let script = r#"set -e
mkdir -p secrets/pki clients; cd clients
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' > leaf.ext
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -subj /CN=ramux-test-ca -days 2 2>/dev/null
leaf() {
  openssl req -new -newkey rsa:2048 -nodes -keyout $1.key -out $1.csr -subj /CN=$1 2>/dev/null
  openssl x509 -req -in $1.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $1.crt -days 2 -extfile leaf.ext 2>/dev/null
}
leaf radius; leaf alice-tls; leaf carol-tls; leaf mallory-tls
cp ca.crt ../secrets/pki/ca.crt; cp radius.crt ../secrets/pki/radius.crt; cp radius.key ../secrets/pki/radius.key
chmod 600 ../secrets/pki/*
"#;
    let o = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pki: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn make_secrets(dir: &Path) {
    let secrets = dir.join("secrets");
    fs::create_dir_all(&secrets).unwrap();
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o700)).unwrap();
    make_pki(dir);
    secret_file(&secrets, "radius/nas/sw1", &format!("{SW_SECRET}\n"));
    secret_file(&secrets, "radius/nas/vpn", &format!("{VPN_SECRET}\n"));
    let nt = format!(
        "# user NT-hash\nalice {}\nbob {}\n",
        nt_hash("alice-pw"),
        nt_hash("bob-pw")
    );
    secret_file(&secrets, "radius/dot1x.nt", &nt);
}

/// A copy of Debian's /etc/freeradius/3.0 with the generated files in place of the stock ones.
fn make_conf(dir: &Path) -> PathBuf {
    let conf = dir.join("conf");
    let o = sh(&format!("cp -a /etc/freeradius/3.0 {}", conf.display()));
    assert!(
        o.status.success(),
        "copy /etc/freeradius/3.0: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let files = freeradius_files_with(
        &services(),
        &options(&dir.join("secrets"), &dir.join("run")),
    )
    .unwrap();
    for (rel, text) in files {
        let p = conf.join(rel);
        let _ = fs::remove_file(&p); // a stock symlink: replace it, not its target
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
    }
    conf
}

/// FreeRADIUS started by the start script inside a namespace; killed (by pid) on drop.
struct Radius {
    child: Child,
    ns: Netns,
    log: PathBuf,
    dir: PathBuf,
}

impl Drop for Radius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Radius {
    fn exec(&self, cmd: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns.name, "sh", "-c", cmd])
            .output()
            .unwrap()
    }
}

fn start(dir: &Path, tag: &str) -> Radius {
    start_edited(dir, tag, &[], |_| {})
}

/// [`start`], with `edit` applied to the configuration directory first, and the start script
/// run by `shell` (empty: its `#!/bin/sh`, dash here; `busybox sh` as on a busybox userland).
fn start_edited(dir: &Path, tag: &str, shell: &[&str], edit: impl Fn(&Path)) -> Radius {
    for (t, p) in [
        ("freeradius", "freeradius"),
        ("radclient", "freeradius-utils"),
        ("eapol_test", "eapoltest"),
        ("openssl", "openssl"),
    ] {
        need(t, p);
    }
    make_secrets(dir);
    let conf = make_conf(dir);
    edit(&conf);
    let ns = Netns::new(&format!("rad{}{tag}", std::process::id())).expect("netns (needs root)");
    ns.exec(&["ip", "link", "set", "lo", "up"]).unwrap();
    ns.exec(&["ip", "addr", "add", &format!("{VPN_NAS}/32"), "dev", "lo"])
        .unwrap();
    let log = dir.join("radius.log");
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .args(shell)
        .arg(start_script())
        .args(["-l", "stdout"])
        .env("RAMUX_RADIUS_CONF", &conf)
        .stdout(fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            fs::File::options().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .unwrap();
    let r = Radius {
        child,
        ns,
        log,
        dir: dir.to_path_buf(),
    };
    wait_ready(&r);
    r
}

fn wait_ready(r: &Radius) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        let log = fs::read_to_string(&r.log).unwrap_or_default();
        if log.contains("Ready to process requests") {
            return;
        }
        assert!(
            !log.contains("ramux-radius:") && !log.contains("rror"),
            "freeradius did not start:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "freeradius not ready after 20 s:\n{}",
        fs::read_to_string(&r.log).unwrap_or_default()
    );
}

/// radclient with the secret in a file (-S), never on argv; returns its stdout and stderr.
/// Its exit status is not used: it is 0 even when sendto fails (docs/radius.md).
fn radclient(r: &Radius, server: &str, secret: &str, attrs: &str) -> String {
    let sf = r.dir.join("radclient.secret");
    fs::write(&sf, secret).unwrap();
    let req = r.dir.join("radclient.req");
    fs::write(&req, attrs).unwrap();
    let o = r.exec(&format!(
        "radclient -x -t 2 -r 1 -f {} -S {} {server}:1812 auth 2>&1",
        req.display(),
        sf.display()
    ));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn mab(mac_user: &str, station: &str) -> String {
    format!("User-Name = \"{mac_user}\"\nUser-Password = \"{mac_user}\"\nCalling-Station-Id = \"{station}\"\nMessage-Authenticator = 0x00\n")
}

fn eapol(r: &Radius, name: &str, network: &str) -> String {
    let c = r.dir.join(format!("{name}.conf"));
    fs::write(
        &c,
        format!("network={{\n\tkey_mgmt=IEEE8021X\n\teapol_flags=0\n{network}}}\n"),
    )
    .unwrap();
    let o = r.exec(&format!(
        "eapol_test -c {} -a 127.0.0.1 -p 1812 -s \"$(cat {}/secrets/radius/nas/sw1)\" -t 5 2>&1",
        c.display(),
        r.dir.display()
    ));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn peap(r: &Radius, user: &str, pw: &str) -> String {
    let ca = r.dir.join("clients/ca.crt");
    eapol(r, "peap", &format!("\teap=PEAP\n\tidentity=\"{user}\"\n\tpassword=\"{pw}\"\n\tphase2=\"auth=MSCHAPV2\"\n\tca_cert=\"{}\"\n", ca.display()))
}

fn tls(r: &Radius, identity: &str, cert: &str) -> String {
    let d = r.dir.join("clients");
    let d = d.display();
    eapol(r, "tls", &format!("\teap=TLS\n\tidentity=\"{identity}\"\n\tca_cert=\"{d}/ca.crt\"\n\tclient_cert=\"{d}/{cert}.crt\"\n\tprivate_key=\"{d}/{cert}.key\"\n"))
}

fn accepted_vlan(out: &str) -> Option<String> {
    if !out.contains("Received Access-Accept") {
        return None;
    }
    out.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Tunnel-Private-Group-Id:0 = ")
            .map(|v| v.trim_matches('"').to_string())
    })
}

/// Each check of the issue, one assertion each, against one server.
#[test]
fn freeradius_live() {
    let s = scratch("live");
    let r = start(&s.0, "l");
    mab_checks(&r);
    vpn_checks(&r);
    peap_checks(&r);
    tls_checks(&r);
}

/// A request from the port NAS (the switch) with its secret.
fn port(r: &Radius, attrs: &str) -> String {
    radclient(r, PORT_NAS, SW_SECRET, attrs)
}

fn rejected(out: &str) -> bool {
    out.contains("Received Access-Reject")
}

fn mab_checks(r: &Radius) {
    let ok = mab("52:54:00:10:00:50", "52-54-00-10-00-50");
    let out = port(r, &ok);
    assert_eq!(
        accepted_vlan(&out).as_deref(),
        Some("10"),
        "MAB accept, VLAN 10:\n{out}"
    );
    let out = port(r, &mab("5254.0020.0050", "52:54:00:20:00:50"));
    assert_eq!(
        accepted_vlan(&out).as_deref(),
        Some("20"),
        "MAB, Cisco notation, VLAN 20:\n{out}"
    );
    let out = port(r, &mab("52:54:00:99:00:50", "52-54-00-99-00-50"));
    assert!(rejected(&out), "unknown MAC rejected:\n{out}");
    let out = port(r, &mab("52:54:00:10:00:50", "52-54-00-20-00-50"));
    assert!(
        rejected(&out),
        "User-Name != Calling-Station-Id rejected:\n{out}"
    );
    let out = port(r, &ok.replace("Message-Authenticator = 0x00\n", ""));
    assert!(
        !out.contains("Received"),
        "no Message-Authenticator: unanswered:\n{out}"
    );
    let out = radclient(r, PORT_NAS, "not-the-secret", &ok);
    assert!(
        !out.contains("Received"),
        "wrong secret: unanswered:\n{out}"
    );
}

fn vpn_checks(r: &Radius) {
    let vpn = "User-Name = \"alice\"\nMessage-Authenticator = 0x00\n";
    let out = radclient(r, VPN_NAS, VPN_SECRET, vpn);
    let want = [
        "Framed-IP-Address = 10.10.0.130",
        "Framed-IP-Netmask = 255.255.255.0",
    ];
    let ok = accepted_vlan(&out).as_deref() == Some("10") && want.iter().all(|w| out.contains(w));
    assert!(ok, "VPN authorisation: address, netmask, VLAN 10:\n{out}");
    let out = radclient(r, VPN_NAS, VPN_SECRET, &vpn.replace("alice", "mallory"));
    assert!(rejected(&out), "VPN user unknown: rejected:\n{out}");
    let out = port(r, vpn);
    assert!(
        rejected(&out),
        "a VPN query from a port NAS: rejected:\n{out}"
    );
}

fn peap_checks(r: &Radius) {
    let out = peap(r, "alice", "alice-pw");
    let ok = eap_ok(&out) && eap_vlan(&out).as_deref() == Some("3130");
    assert!(ok, "PEAP alice: SUCCESS, VLAN 10:\n{}", tail(&out));
    let out = peap(r, "bob", "bob-pw");
    let ok = eap_ok(&out) && eap_vlan(&out).as_deref() == Some("3230");
    assert!(ok, "PEAP bob: SUCCESS, VLAN 20:\n{}", tail(&out));
    let out = peap(r, "alice", "wrong-pw");
    assert!(
        !eap_ok(&out),
        "PEAP wrong password: FAILURE:\n{}",
        tail(&out)
    );
    let out = peap(r, "alice-tls", "alice-pw");
    assert!(
        !eap_ok(&out),
        "PEAP as a certificate identity: FAILURE:\n{}",
        tail(&out)
    );
}

fn tls_checks(r: &Radius) {
    let out = tls(r, "alice-tls", "alice-tls");
    let ok = eap_ok(&out) && eap_vlan(&out).as_deref() == Some("3130");
    assert!(ok, "EAP-TLS: SUCCESS, VLAN 10:\n{}", tail(&out));
    let out = tls(r, "carol-tls", "alice-tls");
    assert!(
        !eap_ok(&out),
        "EAP-TLS, alice's certificate claiming carol-tls: refused:\n{}",
        tail(&out)
    );
    let out = tls(r, "mallory-tls", "mallory-tls");
    assert!(
        !eap_ok(&out),
        "EAP-TLS, a valid certificate of no site identity: refused:\n{}",
        tail(&out)
    );
}

fn eap_ok(out: &str) -> bool {
    out.lines().last() == Some("SUCCESS")
}

/// The VLAN of the last Access-Accept, as eapol_test prints it (hex: `3130` is "10").
fn eap_vlan(out: &str) -> Option<String> {
    let accept = out.rsplit("(Access-Accept)").next()?;
    let after = accept.split("(Tunnel-Private-Group-Id)").nth(1)?;
    Some(
        after
            .lines()
            .nth(1)?
            .trim()
            .strip_prefix("Value: ")?
            .to_string(),
    )
}

fn tail(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Runs the start script against `dir` (conf + secrets made there); it must refuse before
/// FreeRADIUS starts. Returns its stderr.
fn start_refused(dir: &Path) -> String {
    let conf = make_conf(dir);
    let o = Command::new(start_script())
        .env("RAMUX_RADIUS_CONF", &conf)
        .arg("-C") // if it ever got past the checks: only check the configuration
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "start script exit status: {o:?}");
    assert!(
        !dir.join("run").exists(),
        "nothing rendered before the checks passed"
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn start_script_refuses_missing_secret() {
    let s = scratch("missing");
    make_secrets(&s.0);
    let f = s.0.join("secrets/radius/nas/vpn");
    fs::remove_file(&f).unwrap();
    let err = start_refused(&s.0);
    assert!(
        err.starts_with("ramux-radius: ") && err.contains(&format!("{}: missing", f.display())),
        "{err}"
    );
}

#[test]
fn start_script_refuses_readable_secret() {
    let s = scratch("readable");
    make_secrets(&s.0);
    let f = s.0.join("secrets/pki/radius.key");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    let err = start_refused(&s.0);
    assert!(
        err.starts_with("ramux-radius: ") && err.contains(&format!("{}: mode 644", f.display())),
        "{err}"
    );
    let f = s.0.join("secrets/radius/dot1x.nt");
    fs::set_permissions(
        s.0.join("secrets/pki/radius.key"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    let err = start_refused(&s.0);
    assert!(err.contains(&format!("{}: mode 640", f.display())), "{err}");
}

#[test]
fn start_script_refuses_clear_text_password() {
    let s = scratch("cleartext");
    make_secrets(&s.0);
    secret_file(&s.0.join("secrets"), "radius/dot1x.nt", "alice alice-pw\n");
    let err = start_refused(&s.0);
    assert!(
        err.contains("dot1x.nt line 1: want <user> <32 hex digits"),
        "{err}"
    );
    assert!(
        !err.contains("alice-pw"),
        "the refusal must not print the line: {err}"
    );
}

/// `labwall radius SITE -o DIR` from the dns example site: the NAS, MAB, 802.1X and VPN lines
/// reach the files, the VPN netmask is the VLAN's, and no secret value is needed.
#[test]
fn cli_writes_files_from_site() {
    let s = scratch("cli");
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sites/dns/site.lw");
    let o = Command::new(env!("CARGO_BIN_EXE_labwall"))
        .arg("radius")
        .arg(&site)
        .arg("-o")
        .arg(s.0.join("out"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |rel: &str| fs::read_to_string(s.0.join("out").join(rel)).unwrap();
    let clients = read("clients.conf");
    assert!(
        clients.contains("client vpn1 {\n\tipaddr = 172.16.10.20\n"),
        "{clients}"
    );
    assert!(
        clients.contains("$INCLUDE /run/freeradius/ramux/nas/sw1.conf"),
        "{clients}"
    );
    let vpn = read("mods-config/files/ramux_vpn_users");
    assert!(
        vpn.contains(
            "\"bob\"\n\tFramed-IP-Address = 172.16.20.130,\n\tFramed-IP-Netmask = 255.255.255.0,"
        ),
        "{vpn}"
    );
    assert!(read("mods-config/files/ramux_macs").contains("\n52-54-00-20-00-31\n"));
    assert!(read("mods-config/files/ramux_dot1x_certs").contains("\"alice-8021x\""));
    let start = read("ramux/start");
    assert!(
        start.contains("secrets_dir /run/ramux/secrets\n")
            && start.contains("nas radius/nas/vpn1\n"),
        "{start}"
    );
}

/// Pitfall 12, kept measured: with `check_cert_cn` moved from `tls-config` into `tls { }`,
/// FreeRADIUS 3.2 starts without a word, and alice's certificate gets carol-tls's VLAN. (The
/// start script runs under busybox sh here, so both shells render the secrets.)
#[test]
fn check_cert_cn_inside_tls_is_ignored() {
    let s = scratch("certcn");
    let r = start_edited(&s.0, "c", &["busybox", "sh"], |conf| {
        let p = conf.join("mods-enabled/eap");
        let t = fs::read_to_string(&p).unwrap();
        let t = t.replace("\t\tcheck_cert_cn = %{User-Name}\n", "");
        let t = t.replace("\ttls {\n", "\ttls {\n\t\tcheck_cert_cn = %{User-Name}\n");
        fs::write(&p, t).unwrap();
    });
    let out = tls(&r, "carol-tls", "alice-tls");
    assert!(
        eap_ok(&out) && eap_vlan(&out).as_deref() == Some("3230"),
        "the misplaced check lets alice's certificate in as carol-tls (VLAN 20):\n{}",
        tail(&out)
    );
}

fn median_ms(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// MAB requests per second from one radclient (2000 requests, 64 in flight), and the PEAP
/// and EAP-TLS round trips with eapol_test (process start included), against the generated
/// configuration (freeradius -f, threaded). Prints the figures.
#[test]
#[ignore = "measurement: cargo test -p labwall --release --test radius -- --ignored --nocapture"]
fn radius_bench() {
    let s = scratch("bench");
    let r = start(&s.0, "b");
    let n = 2000;
    let one = mab("52:54:00:10:00:50", "52-54-00-10-00-50");
    let reqs: Vec<String> = (0..n).map(|_| one.clone()).collect();
    fs::write(s.0.join("mab.req"), reqs.join("\n")).unwrap();
    fs::write(s.0.join("mab.secret"), SW_SECRET).unwrap();
    let cmd = format!("radclient -q -s -p 64 -t 2 -r 1 -f {0}/mab.req -S {0}/mab.secret {PORT_NAS}:1812 auth 2>&1", s.0.display());
    let mut rates = vec![];
    for _ in 0..3 {
        let t0 = Instant::now();
        let out = String::from_utf8_lossy(&r.exec(&cmd).stdout).into_owned();
        let secs = t0.elapsed().as_secs_f64();
        assert!(
            out.contains(&format!("Accepted      : {n}")),
            "all {n} accepted:\n{out}"
        );
        rates.push(n as f64 / secs);
    }
    let (m, lo, hi) = median_ms(rates);
    println!(
        "MAB: {n} requests, one radclient -p 64: median {m:.0} req/s ({lo:.0}-{hi:.0}, 3 runs)"
    );
    for (name, run) in [("PEAP-MSCHAPv2", 0), ("EAP-TLS", 1)] {
        let mut ms = vec![];
        for _ in 0..10 {
            let t0 = Instant::now();
            let out = if run == 0 {
                peap(&r, "alice", "alice-pw")
            } else {
                tls(&r, "alice-tls", "alice-tls")
            };
            ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            assert!(eap_ok(&out), "{name}:\n{}", tail(&out));
        }
        let (m, lo, hi) = median_ms(ms);
        println!("{name}: eapol_test round trip median {m:.1} ms ({lo:.1}-{hi:.1}, N=10, process start included)");
    }
}

#[test]
fn ipv6_nas_and_mab_only_site() {
    let mut s = services();
    s.nas[0].addr = "2001:db8::3".parse().unwrap();
    s.dot1x.retain(|i| i.kind == IdentityKind::CertCn);
    let files = freeradius_files(&s, "/run/ramux/secrets").unwrap();
    let get = |p: &str| files.iter().find(|(n, _)| n == p).unwrap().1.clone();
    assert!(get("clients.conf").contains("client sw1 {\n\tipv6addr = 2001:db8::3\n"));
    let start = get("ramux/start");
    assert!(
        !start.contains("dot1x.nt"),
        "no PEAP user: no NT-hash file required:\n{start}"
    );
    assert!(
        start.contains("nas radius/nas/sw1\nnas radius/nas/vpn\n"),
        "{start}"
    );
}
