//! SIGHUP reload (docs/vrrp.md, Reload) with keepalived as the peer: an instance whose
//! configuration did not change keeps its state (no transition, the peer never sees it
//! resign), a changed priority is applied in place (the peer preempts, then we preempt back),
//! and a configuration that does not load leaves the daemon running as it was.
//! Needs root, keepalived and iproute2.
mod lab;

use std::time::Duration;

use lab::{conf, Impl, Inst, Lab};

fn vrrpd() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_vrrpd"))
}

const S: fn(u64) -> Duration = Duration::from_secs;

fn one(lab: &Lab, prio: u8, vrid: u8, vip: String) -> Inst<'static> {
    let name: &'static str = if vrid == 100 { "interne" } else { "extra" };
    let _ = lab;
    Inst {
        name,
        iface: "vlan10",
        vrid,
        priority: prio,
        advert_int: "1",
        vips: vec![vip],
        extra: "",
    }
}

fn r1_conf(lab: &Lab, prio: u8, with_extra: bool) -> String {
    let mut insts = vec![one(lab, prio, 100, format!("{}/24 dev vlan10", lab.vip(0)))];
    if with_extra {
        insts.push(one(
            lab,
            120,
            101,
            format!("{}/24 dev vlan10", lab.addr(0, 99)),
        ));
    }
    conf(2, true, &insts, &[])
}

fn hup(lab: &Lab, ri: usize) {
    let pid = lab.procs[ri].as_ref().unwrap().child.id() as i32;
    // SAFETY: signalling our own child (ip netns exec execs vrrpd in place).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
}

/// Wait until r1's log has `n` reload lines.
fn reloaded(lab: &Lab, n: usize) {
    lab.wait("vrrpd reloaded", S(5), |l| {
        l.log(0).matches("SIGHUP: ").count() >= n
    });
}

#[test]
fn sighup_keeps_unchanged_state_and_applies_a_new_priority() {
    let mut lab = Lab::new(&["vlan10"], vrrpd());
    let vip = [lab.vip(0)];
    let r2 = conf(
        2,
        true,
        &[one(&lab, 100, 100, format!("{}/24 dev vlan10", lab.vip(0)))],
        &[],
    );
    lab.start(1, Impl::Keepalived, &r2);
    lab.start(0, Impl::Vrrpd, &r1_conf(&lab, 150, false));
    lab.wait_holder(&vip, 0, S(15));
    std::thread::sleep(S(2));
    let before = lab.status(0);
    let adverts = before["instances"][0]["counters"]["adverts_out"]
        .as_u64()
        .unwrap();

    // Unchanged instance (plus a new one, moved lines): state, VIP and counters carry over.
    lab.write(
        "r1-vrrpd.conf",
        &format!("\n\n{}", r1_conf(&lab, 150, true)),
    );
    hup(&lab, 0);
    reloaded(&lab, 1);
    std::thread::sleep(S(2));
    let st = lab.status(0);
    let i = &st["instances"][0];
    assert_eq!(i["state"], "MASTER", "{st}");
    assert_eq!(i["last_transition"]["to"], "MASTER", "{st}");
    assert!(
        i["last_transition"]["ago_s"].as_f64().unwrap() > 3.5,
        "no new transition: {st}"
    );
    assert!(
        i["counters"]["adverts_out"].as_u64().unwrap() > adverts,
        "{st}"
    );
    assert_eq!(i["counters"]["priority_zero_out"], 0, "{st}");
    assert_eq!(st["instances"][1]["name"], "extra", "{st}");
    assert_eq!(lab.holders(vip[0]), vec![0]);
    assert!(
        lab.log(0)
            .contains("1 instance(s) kept (0 with a new priority), 1 started, 0 left"),
        "{}",
        lab.log(0)
    );
    assert!(
        !lab.log(1).contains("(interne) Entering MASTER STATE"),
        "{}",
        lab.log(1)
    );

    // A new priority: 50 < keepalived's 100, which preempts.
    lab.write("r1-vrrpd.conf", &r1_conf(&lab, 50, true));
    hup(&lab, 0);
    reloaded(&lab, 2);
    let took = lab.wait_holder(&vip, 1, S(6));
    eprintln!("priority 150 -> 50 by reload: keepalived master after {took:?}");
    let st = lab.status(0);
    assert_eq!(st["instances"][0]["priority"], 50, "{st}");
    assert_eq!(st["instances"][0]["state"], "BACKUP", "{st}");
    assert_eq!(
        st["instances"][0]["counters"]["priority_zero_out"], 0,
        "{st}"
    );

    // A broken file changes nothing.
    lab.write(
        "r1-vrrpd.conf",
        "vrrp_instance interne {\n priority 900\n}\n",
    );
    hup(&lab, 0);
    reloaded(&lab, 3);
    assert!(
        lab.log(0).contains("keeping the running configuration"),
        "{}",
        lab.log(0)
    );
    assert_eq!(lab.status(0)["instances"][0]["priority"], 50);

    // And back to 150: vrrpd preempts again.
    lab.write("r1-vrrpd.conf", &r1_conf(&lab, 150, true));
    hup(&lab, 0);
    reloaded(&lab, 4);
    lab.wait_holder(&vip, 0, S(6));
    assert_eq!(lab.status(0)["instances"][0]["priority"], 150);
}
