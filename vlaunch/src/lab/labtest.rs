//! `vlaunch lab test [NAME] [--json] [--junit FILE]`: runs the `[[test]]` entries of the running
//! lab's file against the live lab. The planning (targets, listeners, the matrix, the VRRP
//! theory, verdicts, reports) is ramux-lab's; this module runs the probes in the guests
//! ([`super::guest`]) and applies faults ([`super::fault`]).

mod vpn;

use super::fault::{self, FaultCmd};
use super::guest::{self, Guest};
use super::node::{self, NodeHandle};
use super::state::{LabDir, LabState};
use anyhow::{bail, Context, Result};
use ramux_lab::failover::{self, FailoverMeasured};
use ramux_lab::model::{Address, Lab, LabTest, TestKind};
use ramux_lab::probe::{self, Holder, Leases, ProbePlan, Proto};
use ramux_lab::radius;
use ramux_lab::report::{self, Measured, Outcome, Seen, TestResult};
use ramux_lab::sitefile::SiteModel;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The failover probe's interval (the 20 ms).
pub const PROBE_INTERVAL_MS: u32 = 20;

/// Everything a test run needs: the lab as its file says, the site, the live lab.
pub struct Run<'a> {
    pub lab: &'a Lab,
    pub site: &'a SiteModel,
    pub dir: LabDir,
    pub state: LabState,
    pub leases: Leases,
    guests: BTreeMap<String, Guest>,
    seq: u32,
}

impl<'a> Run<'a> {
    pub fn new(lab: &'a Lab, site: &'a SiteModel, dir: LabDir, state: LabState) -> Run<'a> {
        Run {
            lab,
            site,
            dir,
            state,
            leases: Leases::new(),
            guests: BTreeMap::new(),
            seq: 0,
        }
    }

    fn handle(&self, node: &str) -> Result<NodeHandle> {
        node::find(&self.state, node)
    }

    /// The agent of `node`, connected once per run.
    fn guest(&mut self, node: &str) -> Result<&mut Guest> {
        if !self.guests.contains_key(node) {
            let g = Guest::connect(&self.handle(node)?)?;
            self.guests.insert(node.to_string(), g);
        }
        Ok(self.guests.get_mut(node).expect("inserted"))
    }

    /// The DHCP clients' leases, read from their eth0 (a client without one is left out and
    /// its tests say so).
    pub fn learn_leases(&mut self) {
        self.leases = probe::instance_addresses(self.lab, &self.site.facts);
        let dhcp: Vec<String> = self
            .lab
            .nodes
            .iter()
            .filter(|n| n.enabled && n.address.value == Address::Dhcp)
            .map(|n| n.name.value.clone())
            .collect();
        for n in dhcp {
            if let Ok(Some((a, _))) = self.guest(&n).and_then(|g| g.address("eth0")) {
                self.leases.insert(n, a);
            }
        }
    }

    fn token(&mut self) -> String {
        self.seq += 1;
        format!("ramux-probe-{}-{}", std::process::id(), self.seq)
    }

    /// Sends one probe and says what came back.
    pub fn probe(&mut self, p: &ProbePlan) -> Result<Seen> {
        match p.proto {
            Proto::Ping => self.ping(p),
            Proto::Tcp(port) | Proto::Udp(port) => self.nc(p, port),
        }
    }

    fn ping(&mut self, p: &ProbePlan) -> Result<Seen> {
        let by = match &p.target.holder {
            Some(Holder::Node(n)) => Some(n.clone()),
            _ => None,
        };
        // -W 1: busybox waits 10 s for a last reply by default, whatever -w says.
        let line = format!("ping -c 3 -i 0.2 -W 1 -w 3 {}", p.target.addr);
        let out = self.guest(&p.from)?.sh(&line, Duration::from_secs(10))?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(match guest::parse_ping(&text) {
            (0, _) => Seen::NoAnswer,
            (_, rtt) => Seen::Answered {
                by,
                rtt_ms: rtt.unwrap_or(0.0),
            },
        })
    }

    /// tcp/udp: a listener on the target node first (so "no answer" is the network), then one
    /// line sent; answered when the listener got the token. TCP uses busybox nc; UDP
    /// nc.openbsd (Debian's busybox nc has no -u), which the client image carries.
    fn nc(&mut self, p: &ProbePlan, port: u16) -> Result<Seen> {
        let udp = matches!(p.proto, Proto::Udp(_));
        if udp && port == 53 && p.listener.is_none() {
            return self.dns_query(p);
        }
        let (listen, send) = if udp {
            (
                format!("nc.openbsd -u -l {port}"),
                "nc.openbsd -u -q 0 -w 2",
            )
        } else {
            (format!("nc -l -p {port}"), "nc -w 2")
        };
        let token = self.token();
        let log = format!("/tmp/{token}.log");
        let listener = match &p.listener {
            Some(l) => Some((l.clone(), self.listen(l, &listen, &log)?)),
            None => None,
        };
        let line = format!(
            "command -v {} >/dev/null || {{ echo 'no-nc'; exit 0; }}; echo {token} | {send} {} {port}; echo rc=$?",
            send.split(' ').next().unwrap_or("nc"),
            p.target.addr
        );
        let t0 = Instant::now();
        let sent = self.guest(&p.from)?.sh(&line, Duration::from_secs(15))?;
        let rtt_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let out = String::from_utf8_lossy(&sent.stdout).into_owned()
            + &String::from_utf8_lossy(&sent.stderr);
        if let Some((l, pid)) = listener {
            std::thread::sleep(Duration::from_millis(200));
            let got = self.guest(&l)?.reap(pid, &log)?;
            if got.contains(&token) {
                return Ok(Seen::Answered {
                    by: Some(l),
                    rtt_ms,
                });
            }
        } else if out.contains("rc=0") && !udp {
            return Ok(Seen::Answered { by: None, rtt_ms });
        }
        // After the listener is reaped: a probe that could not be sent says nothing.
        if out.contains("no-nc") || out.contains("invalid option") {
            bail!(
                "{}: no usable nc for {} in the image: {out}",
                p.from,
                p.proto.label()
            );
        }
        Ok(if out.contains("refused") {
            Seen::Refused
        } else {
            Seen::NoAnswer
        })
    }

    /// udp/53 to an appliance: a real query (its dnsmasq answers; any answer, NXDOMAIN too,
    /// means the packet got through).
    fn dns_query(&mut self, p: &ProbePlan) -> Result<Seen> {
        // The server's own PTR: dnsmasq answers the site's reverse zone itself (bogus-priv).
        let line = format!("nslookup {0} {0} 2>&1", p.target.addr);
        let t0 = Instant::now();
        let out = self.guest(&p.from)?.sh(&line, Duration::from_secs(20))?;
        let rtt_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let by = match &p.target.holder {
            Some(Holder::Node(n)) => Some(n.clone()),
            _ => None,
        };
        Ok(
            if guest::dns_answered(&String::from_utf8_lossy(&out.stdout)) {
                Seen::Answered { by, rtt_ms }
            } else {
                Seen::NoAnswer
            },
        )
    }

    /// Starts a listener in the background on `node`; its pid. The short pause lets it bind
    /// before the probe is sent.
    fn listen(&mut self, node: &str, line: &str, log: &str) -> Result<u32> {
        let pid = self.guest(node)?.spawn(line, log)?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(pid)
    }

    /// The source address a probe leaves `from` with.
    fn src_of(&self, from: &str) -> Ipv4Addr {
        self.lab
            .node(from)
            .and_then(|n| probe::node_addr(n, &self.leases))
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// Runs one `[[test]]`; the matrix gives one result per probe.
    pub fn run_test(&mut self, t: &LabTest, say: &mut dyn FnMut(&str)) -> Vec<TestResult> {
        let t0 = Instant::now();
        if let TestKind::Matrix = t.kind {
            return self.matrix(t, say);
        }
        let (result, detail, measured) = match self.take_down(t, say).and_then(|_| self.one(t)) {
            Ok(r) => r,
            Err(e) => (Outcome::Error, format!("{e:#}"), Measured::default()),
        };
        let r = TestResult {
            name: t.name.value.clone(),
            kind: report::kind_name(&t.kind).into(),
            result,
            detail,
            line: Some(t.pos.line as u32),
            elapsed: t0.elapsed(),
            measured,
        };
        say(&report::text_line(&r));
        vec![r]
    }

    /// `down = "NODE"`: crash it before the test unless it is down already; it stays down.
    fn take_down(&mut self, t: &LabTest, say: &mut dyn FnMut(&str)) -> Result<()> {
        let Some(d) = &t.down else { return Ok(()) };
        let h = self.handle(&d.value)?;
        if h.running().is_err() {
            return Ok(());
        }
        say(&format!(
            "{}: crashing {} first (down)",
            t.name.value, d.value
        ));
        fault::apply(&h, FaultCmd::Crash)?;
        let (dir, st) = (self.dir.clone(), &mut self.state);
        fault::record(&dir, st, &d.value, FaultCmd::Crash)?;
        self.guests.remove(&d.value);
        Ok(())
    }

    fn one(&mut self, t: &LabTest) -> Result<(Outcome, String, Measured)> {
        match &t.kind {
            TestKind::Ping { .. } | TestKind::Tcp { .. } | TestKind::Udp { .. } => {
                let plan = probe::plan_test(self.lab, &self.site.facts, t, &self.leases)
                    .map_err(anyhow::Error::msg)?;
                let seen = self.probe(&plan)?;
                Ok(report::judge_probe(&plan, self.src_of(&plan.from), &seen))
            }
            TestKind::Dhcp => self.dhcp(t),
            TestKind::Radius { .. } => self.radius(t),
            TestKind::Vpn { .. } => self.vpn(t),
            TestKind::Dns { name, addresses } => self.dns(t, &name.value, addresses),
            TestKind::Failover {
                node,
                fault,
                max_outage,
                ..
            } => self.failover(t, &node.value, (*fault).into(), *max_outage),
            TestKind::Matrix => unreachable!("run_test handles the matrix"),
        }
    }

    fn from_of(t: &LabTest) -> Result<String> {
        t.from
            .as_ref()
            .map(|f| f.value.clone())
            .with_context(|| format!("test {:?} has no `from`", t.name.value))
    }

    /// The node's lease: an address in its VLAN's network, the VLAN's VIP as gateway.
    fn dhcp(&mut self, t: &LabTest) -> Result<(Outcome, String, Measured)> {
        let from = Self::from_of(t)?;
        let vid = self
            .lab
            .node(&from)
            .and_then(|n| n.nics.first())
            .and_then(|c| c.vlan.value.vids().first().copied())
            .context("the node has no NIC in a VLAN")?;
        let g = self.guest(&from)?;
        let addr = g.address("eth0")?;
        let gw =
            guest::parse_gateway(&g.sh_ok("ip -4 route show default", Duration::from_secs(10))?);
        let fresh =
            guest::parse_fresh_lease(&g.sh_ok(guest::FRESH_LEASE, Duration::from_secs(40))?);
        let facts = &self.site.facts;
        let (net, vip) = (facts.vlan_networks.get(&vid), facts.vips.get(&vid));
        let m = Measured {
            lease: fresh.as_ref().map(|f| f.ip),
            ..Measured::default()
        };
        let in_net = |a: Ipv4Addr| matches!(net, Some((n, len)) if probe::same_net(a, *n, *len));
        let booted = addr.is_some_and(|(a, _)| in_net(a)) && gw.is_some() && gw == vip.copied();
        let now = fresh
            .as_ref()
            .is_some_and(|f| in_net(f.ip) && Some(f.router) == vip.copied() && !f.dns.is_empty());
        let detail = format!(
            "{from} eth0 {} via {}; a new exchange now: {} (VLAN {vid}: network {}, VIP {})",
            addr.map_or("no address".into(), |(a, n)| format!("{a}/{n}")),
            gw.map_or("no gateway".into(), |g| g.to_string()),
            fresh
                .as_ref()
                .map_or("no lease".into(), guest::FreshLease::describe),
            net.map_or("?".into(), |(n, l)| format!("{n}/{l}")),
            vip.map_or("?".into(), |v| v.to_string())
        );
        Ok((
            if booted && now {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            detail,
            m,
        ))
    }

    fn dns(
        &mut self,
        t: &LabTest,
        name: &str,
        want: &[String],
    ) -> Result<(Outcome, String, Measured)> {
        let from = Self::from_of(t)?;
        let out = self
            .guest(&from)?
            .sh(&format!("nslookup {name}"), Duration::from_secs(15))?;
        let mut got = guest::parse_nslookup(&String::from_utf8_lossy(&out.stdout));
        got.sort();
        let mut w = want.to_vec();
        w.sort();
        let pass = got == w;
        let detail = format!("{from}: {name} -> {got:?} (expected {w:?})");
        let m = Measured {
            addresses: got,
            ..Measured::default()
        };
        Ok((if pass { Outcome::Pass } else { Outcome::Fail }, detail, m))
    }

    /// One result per generated probe, each compared with the simulator's verdict.
    fn matrix(&mut self, t: &LabTest, say: &mut dyn FnMut(&str)) -> Vec<TestResult> {
        let m = ramux_lab::matrix::matrix(self.lab, &self.site.master, &self.leases);
        say(&format!(
            "{}: {} probes from the site, {} pairs not probeable",
            t.name.value,
            m.probes.len(),
            m.unprobed.len()
        ));
        for u in &m.unprobed {
            say(&format!(
                "  not probed: {} -> {}: {}",
                u.src_zone, u.dst_zone, u.reason
            ));
        }
        let mut out = Vec::new();
        for p in &m.probes {
            let t0 = Instant::now();
            let r = match self.probe(&p.plan()) {
                Ok(seen) => report::judge_matrix(&t.name.value, p, &seen, t0.elapsed()),
                Err(e) => TestResult {
                    name: format!(
                        "{}: {} -> {} {}",
                        t.name.value, p.src_zone, p.dst_zone, p.service
                    ),
                    kind: "matrix".into(),
                    result: Outcome::Error,
                    detail: format!("{e:#}"),
                    line: Some(t.pos.line as u32),
                    elapsed: t0.elapsed(),
                    measured: Measured::default(),
                },
            };
            say(&report::text_line(&r));
            out.push(r);
        }
        out
    }
}

impl Run<'_> {
    /// A RADIUS request from a NAS node: its files copied in through the agent (mode 0600 in a
    /// private directory), radclient or eapol_test run, the directory removed.
    fn radius(&mut self, t: &LabTest) -> Result<(Outcome, String, Measured)> {
        let p = radius::plan(
            self.lab,
            &self.site.master.site,
            &self.site.facts,
            t,
            &self.leases,
        )
        .map_err(anyhow::Error::msg)?;
        let secrets = self
            .lab
            .secrets
            .as_ref()
            .map(|s| s.value.clone())
            .context("a radius test reads the NAS secret from the lab's `secrets` directory")?;
        let dir = format!("/tmp/{}", self.token());
        let g = self.guest(&p.from)?;
        g.sh_ok(&format!("umask 077; mkdir {dir}"), Duration::from_secs(10))?;
        for f in &p.files {
            let src = match &f.source {
                radius::Source::Secrets(rel) => secrets.join(rel),
                radius::Source::Client(name) => {
                    secrets.join(vbuild::secrets::CLIENTS_DIR).join(name)
                }
            };
            let data = std::fs::read(&src)
                .with_context(|| format!("reading {} for the probe", src.display()))?;
            let put = format!("umask 077; cat >{dir}/{}", f.name);
            g.sh_input(&put, &data, Duration::from_secs(10))?;
        }
        let line = format!("{}; rm -rf {dir}", radius::command(&p, &dir));
        let out = g.sh(&line, Duration::from_secs(60))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("not found") && !text.contains("Received") {
            bail!(
                "{}: no radclient/eapol_test in the image (the nas profile has them): {text}",
                p.from
            );
        }
        let a = radius::parse(p.method, &text);
        let (outcome, detail) = radius::judge(&p, &a);
        Ok((outcome, detail, Measured::default()))
    }
}

/// The router whose NIC has `mac` (where the VIP lives after a failover).
fn router_with_mac(lab: &Lab, mac: &str) -> Option<String> {
    lab.nodes
        .iter()
        .find(|n| n.nics.iter().any(|c| c.mac.value.to_string() == mac))
        .map(|n| n.name.value.clone())
}

impl Run<'_> {
    /// Pings the probe every 20 ms from `from` while `node` is faulted; the longest run of lost
    /// replies is the outage the client saw; the VIP's MAC in the client's ARP table afterwards
    /// says which router holds it.
    fn failover(
        &mut self,
        t: &LabTest,
        node: &str,
        f: FaultCmd,
        max: Duration,
    ) -> Result<(Outcome, String, Measured)> {
        let plan = probe::plan_test(self.lab, &self.site.facts, t, &self.leases)
            .map_err(anyhow::Error::msg)?;
        let from = plan.from.clone();
        let theory =
            failover::theory_for(&self.site.vrrp, Some(plan.target.addr), PROBE_INTERVAL_MS).ok();
        let log = format!("/tmp/{}.log", self.token());
        let line = format!("ping -i 0.{PROBE_INTERVAL_MS:02} {}", plan.target.addr);
        let pid = self.guest(&from)?.spawn(&line, &log)?;
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(2));
        let h = self.handle(node)?;
        fault::apply(&h, f)?;
        let (dir, st) = (self.dir.clone(), &mut self.state);
        fault::record(&dir, st, node, f)?;
        std::thread::sleep(max + Duration::from_secs(3));
        let out = self.guest(&from)?.reap(pid, &log)?;
        let elapsed = t0.elapsed();
        let seqs = guest::ping_seqs(&out);
        let (gap, last) = guest::longest_gap(&seqs);
        // busybox ping under TCG sends slower than asked: scale by the real sending rate.
        let per_ms = elapsed.as_millis() as f64 / (last.max(1) as f64);
        let recovered = seqs.last().is_some_and(|&s| s + 50 > last) && !seqs.is_empty();
        let vip = self.vip_of(&from);
        let holder = match vip {
            Some(v) => self.vip_holder(&from, v)?,
            None => None,
        };
        let m = FailoverMeasured {
            longest_outage_ms: recovered.then(|| ((gap + 1) as f64 * per_ms) as u64),
            vip_holder_after: holder,
        };
        let v = failover::check_failover(&m, max, node, theory.as_ref());
        Ok(report::failover_outcome(&v, &m, theory.as_ref()))
    }

    /// The gateway VIP of `from`'s VLAN.
    fn vip_of(&self, from: &str) -> Option<Ipv4Addr> {
        let n = self.lab.node(from)?;
        let vid = n.nics.first()?.vlan.value.vids().first().copied();
        match vid.and_then(|v| self.site.facts.vips.get(&v)) {
            Some(v) => Some(*v),
            None => self.site.facts.uplink_vip,
        }
    }

    fn vip_holder(&mut self, from: &str, vip: Ipv4Addr) -> Result<Option<String>> {
        let g = self.guest(from)?;
        let out = g.sh_ok(
            &format!("ping -c 1 -w 2 {vip} >/dev/null; ip neigh show {vip}"),
            Duration::from_secs(10),
        )?;
        Ok(guest::parse_neigh(&out).and_then(|m| router_with_mac(self.lab, &m)))
    }
}

/// Runs every test of the running lab `name` (its file as recorded at `up`), printing one line
/// per result; the report.
pub fn run_all(name: &str, say: &mut dyn FnMut(&str)) -> Result<report::Report> {
    let (dir, st) = node::load_lab(name)?;
    let c = super::check(&st.file, None);
    if c.errors() > 0 {
        eprint!("{}", ramux_lab::render_all(&c.diagnostics));
        bail!("{} has errors: correct it first", st.file.display());
    }
    let lab = c.lab.context("a checked lab")?;
    let site_path = lab
        .site
        .as_ref()
        .map(|s| s.value.clone())
        .context("the lab names no `site`: the tests need its addresses")?;
    let site = ramux_lab::sitefile::site_model(&site_path).map_err(anyhow::Error::msg)?;
    let mut run = Run::new(&lab, &site, dir, st);
    run.learn_leases();
    let mut results = Vec::new();
    for t in &lab.tests {
        results.extend(run.run_test(t, say));
    }
    Ok(report::Report::new(name, results))
}
