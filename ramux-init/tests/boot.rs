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

mod fixture;

use std::time::Duration;

use fixture::*;

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

/// A ruleset that loads (the input hook accepting, so the console stays usable).
const RULESET: &str = "table inet ramuxtest {\n chain input {\n  type filter hook input priority 0; policy accept;\n  iif lo accept\n }\n}\n";

/// network.ip fails (a device the machine does not have, as a router booted with one NIC): the
/// appliance fails closed. The lines before the failing one and the ruleset still apply, but
/// forwarding stays off, no service starts, and `ramux: not ready ...` replaces the ready line.
#[test]
fn a_network_that_does_not_apply_fails_closed() {
    let work = workdir("closed");
    let tree = kernel_tree();
    let modules = module_closure(&tree, MODULES);
    let toml = APPLIANCE.replace("@MODULES@", &format!("{modules:?}"));
    let (kernel, initrd) = build_image(
        &work.0,
        &toml,
        &[
            ("sysctl.conf", "net.ipv4.ip_forward = 1\n"),
            (
                "network.ip",
                "link set eth0 up\naddr add 192.0.2.1/24 dev eth0\nlink set ramux-nodev up\n",
            ),
            ("ruleset.nft", RULESET),
        ],
        MODULES,
    );
    let mut vm = Vm::boot(&work.0, &kernel, &initrd, true);
    vm.wait_for(
        "ramux: not ready profile=inittest role=MASTER host=ramux-inittest: /etc/ramux/network.ip did not apply; forwarding stays off, services not started",
        Duration::from_secs(120),
    );
    vm.wait_for("/root # ", Duration::from_secs(60));
    vm.type_line("echo \"==PROBE$((1+1))\"; cat /proc/sys/net/ipv4/ip_forward; ip -o -4 addr show dev eth0; nft list tables; pidof sleep || echo no-services; echo \"==END$((1+1))\"");
    vm.wait_for("==END2", Duration::from_secs(60));
    let text = vm.text();
    let probe = text
        .split("==PROBE2")
        .last()
        .unwrap()
        .split("==END2")
        .next()
        .unwrap();
    assert!(!text.contains("ramux: ready profile="), "{text}");
    assert!(
        text.contains("ramux: failed labwall: /sbin/ip -batch /etc/ramux/network.ip"),
        "{text}"
    );
    assert!(
        probe.lines().any(|l| l.trim() == "0"),
        "forwarding must stay off:\n{probe}"
    );
    assert!(probe.contains("inet 192.0.2.1/24"), "{probe}");
    assert!(
        probe.contains("table inet ramuxtest"),
        "the ruleset still loads:\n{probe}"
    );
    assert!(probe.contains("no-services"), "{probe}");
    assert!(!text.contains("ramux: failed flaky"), "{text}");
}

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
            ("network.ip", "link set eth0 up\naddr add 192.0.2.1/24 dev eth0\n"),
            ("ruleset.nft", RULESET),
        ],
        MODULES,
    );
    let mut vm = Vm::boot(&work.0, &kernel, &initrd, true);
    let ready = "ramux: ready profile=inittest role=MASTER host=ramux-inittest";
    let t_ready = vm.wait_for(ready, Duration::from_secs(120));
    vm.wait_for("ramux: up ", Duration::from_secs(30));
    // Let the flaky service fail a few times; the prompt means the shell has ttyS0 open (input
    // typed before that is dropped by the UART driver).
    std::thread::sleep(Duration::from_secs(2));
    vm.wait_for("/root # ", Duration::from_secs(60));
    vm.type_line("kill -HUP 1; kill -QUIT 1; echo \"==PROBE$((1+1))\"; grep SigBlk /proc/$(pidof sleep)/status; cat /proc/sys/net/ipv4/ip_forward; hostname; ip -o -4 addr show dev eth0; nft list tables; cat /etc/machine-id; (sleep 0.2 &); sleep 1; echo ZOMBIES=$(grep -l zombie /proc/[0-9]*/status 2>/dev/null | wc -l); echo \"==END$((1+1))\"");
    vm.wait_for("==END2", Duration::from_secs(60));
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
    assert!(!text.contains("failed labwall: /sbin/ip"), "{text}");
    assert!(!text.contains("failed labwall: /usr/sbin/nft"), "{text}");
    assert!(
        !text.contains("ramux: watching /dev/input/"),
        "no evdev in this image:\n{text}"
    );
    // Effects seen from the console shell.
    assert!(
        probe.lines().any(|l| l.trim() == "1"),
        "ip_forward not set:\n{probe}"
    );
    assert!(probe.contains("ramux-inittest"), "{probe}");
    assert!(probe.contains("inet 192.0.2.1/24"), "network.ip:\n{probe}");
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

    // SIGHUP/SIGQUIT sent to PID 1 above changed nothing: it still handles the button.
    assert!(
        !text.contains("ramux: rebooting") && !text.contains("ramux: powering off"),
        "{text}"
    );
    vm.qmp("system_powerdown", None);
    let t_off = vm.wait_exit(Duration::from_secs(60));
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

/// A ready appliance powers off on the button, even when it is pressed the moment the ready
/// line appears (init subscribes to ACPI events before it prints the line).
#[test]
fn powers_off_on_button_pressed_at_the_ready_line() {
    let work = workdir("ready-button");
    let tree = kernel_tree();
    let modules = module_closure(&tree, MODULES);
    let toml = format!(
        "profile = \"inittest\"\nrole = \"BACKUP\"\nhostname = \"ramux-button\"\n\
         kernel_release = \"6.1.0-56-amd64\"\nmodules = {modules:?}\n\
         [[service]]\nname = \"ticker\"\nargv = [\"/bin/sleep\", \"3600\"]\n"
    );
    let (kernel, initrd) = build_image(&work.0, &toml, &[], MODULES);
    let mut vm = Vm::boot(&work.0, &kernel, &initrd, true);
    vm.press_power_at(
        "ramux: ready profile=inittest role=BACKUP host=ramux-button\n",
        Duration::from_secs(120),
    );
    vm.wait_exit(Duration::from_secs(30));
    let text = vm.text();
    assert!(
        text.contains("ramux: power button pressed (ACPI button/power LNXPWRBN:00)"),
        "{text}"
    );
    assert!(text.contains("reboot: Power down"), "{text}");
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
    vm.wait_for("(Power Button) for KEY_POWER", Duration::from_secs(20));
    vm.wait_for("/root # ", Duration::from_secs(60));
    vm.type_line("echo \"==SHELL$((2+3))\"");
    vm.wait_for("==SHELL5", Duration::from_secs(60));
    vm.type_line("poweroff");
    vm.wait_exit(Duration::from_secs(60));
    let text = vm.text();
    assert!(!text.contains("ramux: ready"), "{text}");
    assert!(text.contains("ramux: powering off"), "{text}");
    assert!(text.contains("reboot: Power down"), "{text}");
}
