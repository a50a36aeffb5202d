//! `radius = "mab"|"peap"|"tls"` tests: the request a NAS of the site sends, as the switch does
//! for a port (MAB, through Debian's `radclient`) or for a supplicant behind it (PEAP-MSCHAPv2
//! and EAP-TLS, through `eapol_test`), from a lab node holding a `NAS` line's address. Pure: the
//! plan, the files the prober needs, its shell line, and the verdict read from the tools'
//! output. The runner copies the files into the guest through its agent, never the network.

use std::net::{IpAddr, Ipv4Addr};

use labwall::aaa::secrets::{CA_CERT, NAS_DIR};
use labwall::model::Site;

use crate::model::{Expect, Lab, LabTest, RadiusMethod, TestKind};
use crate::probe::{node_addr, resolve_target, Leases};
use crate::report::Outcome;
use crate::site::SiteFacts;

/// One planned request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusPlan {
    pub from: String,
    pub server: Ipv4Addr,
    /// The site's name of the NAS the prober stands in for.
    pub nas: String,
    pub method: RadiusMethod,
    pub identity: String,
    pub expect: Expect,
    pub vlan: Option<u16>,
    /// The files the prober needs, each copied from the lab's secrets directory.
    pub files: Vec<ProbeFile>,
}

/// A file of the prober's work directory and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFile {
    /// Its name in the guest's work directory.
    pub name: String,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path below the secrets directory (`radius/nas/sw1`).
    Secrets(String),
    /// A client-side credential: a file of the secrets directory's client area
    /// (`alice.password`, `alice-8021x.crt`), never packed into an overlay.
    Client(String),
}

/// What the tool heard back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An Access-Accept and the VLAN it carried (RFC 3580 Tunnel-Private-Group-Id).
    Accept(Option<u16>),
    Reject,
    NoAnswer,
}

/// The plan of a `radius` test: `from` must hold the address of one of the site's NAS lines
/// (RADIUS ignores anyone else), `server` an address the site's RADIUS answers at.
pub fn plan(
    lab: &Lab,
    site: &Site,
    facts: &SiteFacts,
    t: &LabTest,
    leases: &Leases,
) -> Result<RadiusPlan, String> {
    let TestKind::Radius {
        method,
        server,
        identity,
        vlan,
    } = &t.kind
    else {
        return Err(format!("test {:?} is not a radius test", t.name.value));
    };
    let from = t.from.as_ref().map(|f| f.value.clone()).unwrap_or_default();
    let node = lab.node(&from).ok_or_else(|| format!("no node {from}"))?;
    let addr = node_addr(node, leases)
        .ok_or_else(|| format!("{from} has no known address: give it a NAS line's address"))?;
    let nas = site
        .services
        .nas
        .iter()
        .find(|n| n.addr == IpAddr::V4(addr))
        .ok_or_else(|| {
            format!(
                "{from} ({addr}) is no NAS of the site, so RADIUS would ignore it: give it the address of a NAS line"
            )
        })?;
    let target = resolve_target(lab, facts, &server.value, Some(&from), leases)?;
    Ok(RadiusPlan {
        from,
        server: target.addr,
        nas: nas.name.clone(),
        method: *method,
        identity: identity.value.clone(),
        expect: t.expect,
        vlan: *vlan,
        files: files(*method, &nas.secret, &identity.value),
    })
}

fn files(method: RadiusMethod, secret: &str, identity: &str) -> Vec<ProbeFile> {
    let f = |name: &str, source: Source| ProbeFile {
        name: name.into(),
        source,
    };
    let mut v = vec![f("secret", Source::Secrets(format!("{NAS_DIR}/{secret}")))];
    match method {
        RadiusMethod::Mab => {}
        RadiusMethod::Peap => {
            v.push(f("ca.crt", Source::Secrets(CA_CERT.into())));
            v.push(f(
                "password",
                Source::Client(format!("{identity}.password")),
            ));
        }
        RadiusMethod::Tls => {
            v.push(f("ca.crt", Source::Secrets(CA_CERT.into())));
            v.push(f("client.crt", Source::Client(format!("{identity}.crt"))));
            v.push(f("client.key", Source::Client(format!("{identity}.key"))));
        }
    }
    v
}

/// The prober's shell line, its files in `dir`. The secret goes to radclient in a file (`-S`);
/// eapol_test takes it only on its command line, which stays inside the guest.
pub fn command(p: &RadiusPlan, dir: &str) -> String {
    let id = &p.identity;
    match p.method {
        RadiusMethod::Mab => format!(
            "printf '%s\\n' 'User-Name = \"{id}\"' 'User-Password = \"{id}\"' \
             'Calling-Station-Id = \"{}\"' 'Message-Authenticator = 0x00' >{dir}/req; \
             radclient -x -t 3 -r 2 -f {dir}/req -S {dir}/secret {}:1812 auth 2>&1",
            id.replace([':', '.'], "-"),
            p.server
        ),
        RadiusMethod::Peap => eapol(
            p,
            dir,
            &format!(
                "eap=PEAP identity=\\\"{id}\\\" password=\\\"$(cat {dir}/password)\\\" \
                 phase2=\\\"auth=MSCHAPV2\\\" ca_cert=\\\"{dir}/ca.crt\\\""
            ),
        ),
        RadiusMethod::Tls => eapol(
            p,
            dir,
            &format!(
                "eap=TLS identity=\\\"{id}\\\" ca_cert=\\\"{dir}/ca.crt\\\" \
                 client_cert=\\\"{dir}/client.crt\\\" private_key=\\\"{dir}/client.key\\\""
            ),
        ),
    }
}

/// `eapol_test` with a one-network configuration of `settings` (space-separated k=v, each
/// written on its own line).
fn eapol(p: &RadiusPlan, dir: &str, settings: &str) -> String {
    format!(
        "{{ echo 'network={{'; echo '  key_mgmt=IEEE8021X'; echo '  eapol_flags=0'; \
         for kv in {settings}; do echo \"  $kv\"; done; echo '}}'; }} >{dir}/conf; \
         eapol_test -c {dir}/conf -a {} -p 1812 -s \"$(cat {dir}/secret)\" -t 15 2>&1",
        p.server
    )
}

/// What the tool's output says came back.
pub fn parse(method: RadiusMethod, out: &str) -> Answer {
    match method {
        RadiusMethod::Mab => parse_radclient(out),
        RadiusMethod::Peap | RadiusMethod::Tls => parse_eapol(out),
    }
}

fn parse_radclient(out: &str) -> Answer {
    if out.contains("Received Access-Reject") {
        return Answer::Reject;
    }
    if !out.contains("Received Access-Accept") {
        return Answer::NoAnswer;
    }
    Answer::Accept(out.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Tunnel-Private-Group-Id:0 = ")?
            .trim_matches('"')
            .parse()
            .ok()
    }))
}

/// eapol_test ends with `SUCCESS` or `FAILURE`; the VLAN is the last Access-Accept's
/// Tunnel-Private-Group-Id, printed as hex (`3230` is "20").
fn parse_eapol(out: &str) -> Answer {
    let last = out.lines().last().unwrap_or("").trim();
    if last != "SUCCESS" {
        let answered = out.contains("(Access-Reject)") || out.contains("(Access-Challenge)");
        return if answered {
            Answer::Reject
        } else {
            Answer::NoAnswer
        };
    }
    let vlan = out
        .rsplit("(Access-Accept)")
        .next()
        .and_then(|a| a.split("(Tunnel-Private-Group-Id)").nth(1))
        .and_then(|a| a.lines().nth(1))
        .and_then(|l| l.trim().strip_prefix("Value: "))
        .and_then(unhex)
        .and_then(|s| s.parse().ok());
    Answer::Accept(vlan)
}

fn unhex(h: &str) -> Option<String> {
    let b: Option<Vec<u8>> = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(b?).ok()
}

/// Pass when the answer is the one expected: an Access-Accept with the VLAN asked for, or an
/// Access-Reject. No answer is never a pass: the firewall, a wrong secret or a dead server.
pub fn judge(p: &RadiusPlan, a: &Answer) -> (Outcome, String) {
    let what = format!(
        "{:?} {} from {} ({}) to {}",
        p.method, p.identity, p.from, p.nas, p.server
    )
    .to_lowercase();
    let pass = match (p.expect, a) {
        (Expect::Ok, Answer::Accept(v)) => p.vlan.is_none() || *v == p.vlan,
        (Expect::Blocked, Answer::Reject) => true,
        _ => false,
    };
    let heard = match a {
        Answer::Accept(Some(v)) => format!("Access-Accept, VLAN {v}"),
        Answer::Accept(None) => "Access-Accept without a VLAN".into(),
        Answer::Reject => "Access-Reject".into(),
        Answer::NoAnswer => "no answer (firewall, secret or server)".into(),
    };
    let want = match (p.expect, p.vlan) {
        (Expect::Ok, Some(v)) => format!("accept with VLAN {v}"),
        (Expect::Ok, None) => "accept".into(),
        (Expect::Blocked, _) => "reject".into(),
    };
    let outcome = if pass { Outcome::Pass } else { Outcome::Fail };
    (outcome, format!("{what}: {heard} (expected {want})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_radclient_and_eapol_test() {
        let acc = "Sent Access-Request Id 1\nReceived Access-Accept Id 1\n\tTunnel-Private-Group-Id:0 = \"20\"\n";
        assert_eq!(parse(RadiusMethod::Mab, acc), Answer::Accept(Some(20)));
        let rej = "Received Access-Reject Id 2 from 172.16.10.10:1812\n";
        assert_eq!(parse(RadiusMethod::Mab, rej), Answer::Reject);
        assert_eq!(
            parse(RadiusMethod::Mab, "(0) No reply from server for ID 1\n"),
            Answer::NoAnswer
        );
        let eap = "RADIUS message: code=2 (Access-Accept)\n Attribute 81 (Tunnel-Private-Group-Id) length=5\n    Value: 3130\nSUCCESS\n";
        assert_eq!(parse(RadiusMethod::Peap, eap), Answer::Accept(Some(10)));
        let fail = "RADIUS message: code=3 (Access-Reject)\nFAILURE\n";
        assert_eq!(parse(RadiusMethod::Tls, fail), Answer::Reject);
        assert_eq!(
            parse(RadiusMethod::Tls, "EAPOL test timed out\nFAILURE\n"),
            Answer::NoAnswer
        );
    }

    #[test]
    fn the_mab_line_keeps_the_secret_in_a_file() {
        let p = RadiusPlan {
            from: "NAS1".into(),
            server: Ipv4Addr::new(172, 16, 10, 10),
            nas: "sw1".into(),
            method: RadiusMethod::Mab,
            identity: "52:54:00:20:00:30".into(),
            expect: Expect::Ok,
            vlan: Some(20),
            files: files(RadiusMethod::Mab, "sw1", "x"),
        };
        let c = command(&p, "/tmp/w");
        assert!(c.contains("-S /tmp/w/secret 172.16.10.10:1812 auth"), "{c}");
        assert!(
            c.contains("Calling-Station-Id = \"52-54-00-20-00-30\""),
            "{c}"
        );
        assert_eq!(p.files[0].source, Source::Secrets("radius/nas/sw1".into()));
        let (o, d) = judge(&p, &Answer::Accept(Some(10)));
        assert_eq!(o, Outcome::Fail, "{d}");
        assert!(
            d.contains("Access-Accept, VLAN 10 (expected accept with VLAN 20)"),
            "{d}"
        );
    }
}
