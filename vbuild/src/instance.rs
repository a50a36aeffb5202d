//! Instance profiles (`instances = "site"`, the dns appliance): one image per server the site
//! names on its SERVERS line (`dns1`, `dns2`), instead of MASTER/BACKUP, which mean nothing for
//! them. The instance is the build variable `instance` (`--instance dns1` is
//! `--set instance=dns1`); it names the image (`images/dns1.iso`, host name `dns1`) and picks
//! the labwall outputs that go into it (docs/builder.md, Instances; docs/dns.md).

use crate::build::BuildRequest;
use crate::profile::Profile;
use crate::sha256_file;
use anyhow::{anyhow, bail, Context, Result};
use labwall::model::{Iface, Site};
use ramux_contract::files;
use std::net::IpAddr;
use std::path::Path;

/// The build variable that carries the instance name.
pub const VAR: &str = "instance";
/// The one kind of instances: the site's SERVERS line.
pub const KIND: &str = "site";
/// Where the image's FreeRADIUS configuration goes (Debian's tree).
pub const RADIUS_DIR: &str = "etc/freeradius/3.0";
/// The dns profile's radius service (overlays/dns): makes /run/freeradius, then
/// ramux-radius-start renders the secrets and runs FreeRADIUS.
pub const RADIUS_START: &str = "/usr/sbin/ramux-radius-start";

/// The vpn profile: its instances are the site's VPNSERVER lines, its files the vpn role's.
pub const VPN_PROFILE: &str = "vpn";
/// In a profile service, replaced by each VLAN id the instance serves: the service is
/// repeated once per `etc/ramux/openvpn/vlan<id>.conf` of the image (`openvpn-vlan10`, ...).
pub const VLAN_PLACEHOLDER: &str = "@VLAN@";

/// Files of the image, `(path relative to the image root, content)`.
pub type Files = Vec<(String, String)>;

/// Checks a profile's `instances = ...` value.
pub fn check_kind(profile: &str, kind: &str) -> Result<String> {
    if kind != KIND {
        bail!("profiles/{profile}/profile.toml: instances = '{kind}' must be \"{KIND}\" (the site's SERVERS line)");
    }
    Ok(kind.to_string())
}

/// The `instance` variable of the request, if any (the last one wins, like every `--set`).
fn requested(sets: &[(String, String)]) -> Option<&str> {
    sets.iter()
        .rev()
        .find(|(k, _)| k == VAR)
        .map(|(_, v)| v.as_str())
}

/// The request with an instance's defaults: host name and default output are the instance.
/// Other profiles must not be given one (it would silently mean nothing).
pub fn prepare(req: &BuildRequest, prof: &Profile) -> Result<BuildRequest> {
    let mut req = req.clone();
    let Some(name) = requested(&req.sets).map(str::to_string) else {
        if prof.instances.is_some() {
            bail!("profile '{}' builds one image per instance of its site: pass --instance NAME (a server of the site's SERVERS line) and --site FILE", prof.name);
        }
        return Ok(req);
    };
    if prof.instances.is_none() {
        bail!(
            "profile '{}' has no instances: --instance {name} is for profiles with instances = \"site\" (dns)",
            prof.name
        );
    }
    if !prof.is_roleless() {
        bail!(
            "profiles/{}/profile.toml: a profile with instances takes no role: set roles = []",
            prof.name
        );
    }
    if req.out.is_none() {
        req.out = Some(req.root.join("images").join(format!("{name}.iso")));
    }
    if !req.sets.iter().any(|(k, _)| k == "hostname") {
        req.sets.insert(0, ("hostname".into(), name));
    }
    Ok(req)
}

/// The site files of an instance image and the site's input hash (for the manifest); `None`
/// for a profile without instances. Fails before any slow step.
pub fn site_files(
    req: &BuildRequest,
    prof: &Profile,
    sets: &[(String, String)],
) -> Result<Option<(Files, (String, String))>> {
    if prof.instances.is_none() {
        return Ok(None);
    }
    let name = requested(sets).ok_or_else(|| anyhow!("no instance"))?;
    let path = req
        .site
        .clone()
        .or_else(|| prof.site.clone())
        .ok_or_else(|| {
            anyhow!(
                "profile '{}' needs the site file that names instance {name}: pass --site FILE",
                prof.name
            )
        })?;
    let site = compile(&path, name, sets)?;
    let files = if prof.name == VPN_PROFILE {
        vpn_files(&site, name)?
    } else {
        instance_files(&site, name)?
    };
    let key = crate::build::rel_display(&req.root, &path);
    Ok(Some((files, (key, sha256_file(&path)?))))
}

/// Compiles the site (as MASTER: the dns services do not depend on the role). `HOSTNAME` is the
/// instance, so nothing depends on the build machine's name.
fn compile(path: &Path, instance: &str, sets: &[(String, String)]) -> Result<Site> {
    let mut defines = vec![("HOSTNAME".to_string(), instance.to_string())];
    defines.extend(sets.iter().filter(|(k, _)| k != VAR).cloned());
    let opts = labwall::Options {
        role: "MASTER".into(),
        defines,
        allow_exec: false,
        compat_vips_all: false,
        system_hostname: None,
        vrrp_daemon: Default::default(),
    };
    labwall::compile_path(path, &opts)
        .map(|c| c.site)
        .map_err(|d| {
            anyhow!(
                "labwall site {} does not compile:\n{}",
                path.display(),
                labwall::diag::render_all(&d).trim_end()
            )
        })
}

/// dnsmasq.conf, the leg's network setup and the FreeRADIUS files of `instance`.
pub fn instance_files(site: &Site, instance: &str) -> Result<Files> {
    let leg = leg(site, instance)?;
    let dnsmasq = labwall::dnsmasq::dnsmasq_conf(site, instance).map_err(|e| anyhow!(e))?;
    let mut out = vec![
        (in_image(files::DNSMASQ_CONF), dnsmasq),
        (in_image(files::NETWORK_IP), network_ip(site, instance, leg)),
    ];
    let o = labwall::aaa::radius::Options {
        secrets_dir: ramux_contract::secrets::RUN_DIR.to_string(),
        run_dir: labwall::aaa::radius::RUN_DIR.to_string(),
        vlan_prefix: site
            .ifaces
            .iter()
            .filter_map(|i| Some((i.vid?, i.net4.len)))
            .collect(),
    };
    let radius = labwall::aaa::radius::freeradius_files_with(&site.services, &o)
        .map_err(|e| anyhow!("{}: {e}", site.file))?;
    out.extend(
        radius
            .into_iter()
            .map(|(rel, text)| (format!("{RADIUS_DIR}/{rel}"), text)),
    );
    Ok(out)
}

/// One VPN appliance's files (labwall's vpn role): under /etc/ramux, `hosts` as /etc/hosts.
pub fn vpn_files(site: &Site, instance: &str) -> Result<Files> {
    let files = labwall::vpn::vpn_files(site, instance).map_err(|e| anyhow!(e))?;
    let place = |n: &str| match n {
        "hosts" => "etc/hosts".to_string(),
        _ => format!("{}/{n}", in_image(labwall::vpn::ETC)),
    };
    Ok(files.into_iter().map(|(n, t)| (place(&n), t)).collect())
}

fn in_image(p: &str) -> String {
    files::in_image(p).to_string()
}

/// The VLAN interface the instance's address is in; an unknown instance is an error at the
/// SERVERS line, naming the servers it lists.
fn leg<'a>(site: &'a Site, instance: &str) -> Result<&'a Iface> {
    let svc = &site.services;
    let Some(me) = svc.servers.iter().find(|s| s.name == instance) else {
        let Some(first) = svc.servers.first() else {
            bail!("{}: no SERVERS line, so no instance {instance} (add `SERVERS {instance} ...` naming HOST aliases)", site.file);
        };
        let names: Vec<&str> = svc.servers.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "{}:{}: instance {instance} is not on the SERVERS line (it names {}): pass one of them to --instance",
            site.file,
            first.line,
            names.join(" ")
        );
    };
    site.ifaces
        .iter()
        .find(|i| i.vid == Some(me.vlan))
        .ok_or_else(|| {
            anyhow!(
                "{}: VLAN {} of {instance} is not in the site",
                site.file,
                me.vlan
            )
        })
}

/// `ip -batch` lines for the appliance's one NIC: eth0, untagged on an access port of its VLAN,
/// renamed to the VLAN's name (`vlan10`, which the generated dnsmasq.conf binds to); its HOST
/// address(es) with the VLAN's prefix, default routes via the VLAN's VIPs.
pub fn network_ip(site: &Site, instance: &str, leg: &Iface) -> String {
    let dev = &leg.ifname;
    let mut s = format!(
        "# Generated by vbuild for {instance} from {}: eth0 untagged in VLAN {} -- do not edit.\n\
         link set dev eth0 name {dev}\nlink set dev {dev} up\n",
        site.file,
        leg.vid.unwrap_or(0)
    );
    let mut routes = String::new();
    for (addr, len, via) in addresses(site, instance, leg) {
        s.push_str(&format!("address add {addr}/{len} dev {dev}\n"));
        if let Some(v) = via {
            routes.push_str(&format!("route add default via {v} dev {dev}\n"));
        }
    }
    s + &routes
}

/// The instance's HOST addresses inside the leg's prefixes: (address, prefix length, VIP).
fn addresses(site: &Site, instance: &str, leg: &Iface) -> Vec<(IpAddr, u8, Option<IpAddr>)> {
    let mut nets = vec![(leg.net4, leg.vip4.or(leg.gw4).map(IpAddr::V4))];
    nets.extend(leg.v6.iter().map(|a| (a.prefix, a.vip)));
    let host: Vec<IpAddr> = site
        .aliases
        .iter()
        .filter(|a| a.name == instance)
        .flat_map(|a| a.nets.iter().map(|n| n.addr))
        .collect();
    nets.into_iter()
        .filter_map(|(net, via)| {
            let a = host.iter().find(|a| net.contains(**a))?;
            Some((*a, net.len, via))
        })
        .collect()
}

/// The services as the site makes them: one whose `only_if` file is not among the site files
/// is left out (a router whose site relays nothing runs no relay, and reports no failure), and
/// [`RADIUS_START`] needs the secrets its generated list names (the site's NAS secrets too), so
/// ramux-init holds it back with one `ramux: failed` line instead of a restart loop.
pub fn site_services(mut prof: Profile, site_files: &[(String, String)]) -> Profile {
    prof.services.retain(|s| match &s.only_if {
        Some(f) => site_files.iter().any(|(p, _)| p == files::in_image(f)),
        None => true,
    });
    prof.services = per_vlan_services(prof.services, site_files);
    add_vpn_auth_secrets(&mut prof, site_files);
    let list = format!("{RADIUS_DIR}/ramux/start");
    let Some((_, start)) = site_files.iter().find(|(p, _)| *p == list) else {
        return prof;
    };
    for s in prof
        .services
        .iter_mut()
        .filter(|s| s.argv[0] == RADIUS_START)
    {
        for rel in start_secrets(start) {
            if !s.secrets.contains(&rel) {
                s.secrets.push(rel);
            }
        }
    }
    prof
}

/// A service whose argv holds [`VLAN_PLACEHOLDER`] once per VLAN server config of the image
/// (none: left out), named `<name>-vlan<id>`, needing the secrets its config names (`ca`,
/// `cert`, `key`, `tls-crypt` under the secrets directory): ramux-init then holds back a server
/// whose key is missing with one `ramux: failed` line.
fn per_vlan_services(
    services: Vec<crate::profile::Service>,
    site_files: &[(String, String)],
) -> Vec<crate::profile::Service> {
    let dir = format!("{}/openvpn/vlan", in_image(labwall::vpn::ETC));
    let confs: Vec<(&str, &str)> = site_files
        .iter()
        .filter_map(|(p, t)| Some((p.strip_prefix(&dir)?.strip_suffix(".conf")?, t.as_str())))
        .collect();
    let mut out = Vec::new();
    for s in services {
        if !s.argv.iter().any(|a| a.contains(VLAN_PLACEHOLDER)) {
            out.push(s);
            continue;
        }
        for (vid, conf) in &confs {
            let mut v = s.clone();
            v.name = format!("{}-vlan{vid}", s.name);
            v.argv = s
                .argv
                .iter()
                .map(|a| a.replace(VLAN_PLACEHOLDER, vid))
                .collect();
            for rel in conf_secrets(conf) {
                if !v.secrets.contains(&rel) {
                    v.secrets.push(rel);
                }
            }
            out.push(v);
        }
    }
    out
}

/// The secrets an OpenVPN config reads from the secrets directory (`cert /run/ramux/secrets/pki/vpn1.crt`).
fn conf_secrets(conf: &str) -> Vec<String> {
    let prefix = format!("{}/", ramux_contract::secrets::RUN_DIR);
    conf.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(k, _)| matches!(*k, "ca" | "cert" | "key" | "tls-crypt"))
        .filter_map(|(_, p)| p.trim().strip_prefix(&prefix).map(str::to_string))
        .collect()
}

/// The ramux-vpn-auth service needs the NAS secret its generated vpn-auth.toml names.
fn add_vpn_auth_secrets(prof: &mut Profile, site_files: &[(String, String)]) {
    let conf = in_image(ramux_contract::vpn::VPN_AUTH_CONF);
    let Some((_, text)) = site_files.iter().find(|(p, _)| *p == conf) else {
        return;
    };
    let names: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("secret = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .map(str::to_string)
        .collect();
    for s in prof
        .services
        .iter_mut()
        .filter(|s| s.argv[0].ends_with("/ramux-vpn-auth"))
    {
        for n in &names {
            if !s.secrets.contains(n) {
                s.secrets.push(n.clone());
            }
        }
    }
}

/// The secret files a generated `ramux/start` list names (`nas radius/nas/sw1` lines...).
fn start_secrets(list: &str) -> Vec<String> {
    list.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(k, _)| matches!(*k, "nas" | "nt" | "pki"))
        .map(|(_, rel)| rel.trim().to_string())
        .collect()
}

/// The routers' DHCP relay (`dhcp-relay.conf`), when the labwall site relays a VLAN.
pub fn relay_files(path: Option<&Path>, role: &str, defines: &[(String, String)]) -> Result<Files> {
    let Some(path) = path.filter(|p| p.extension() == Some("lw".as_ref())) else {
        return Ok(vec![]);
    };
    let opts = labwall::Options {
        role: role.to_string(),
        defines: defines.to_vec(),
        allow_exec: false,
        compat_vips_all: false,
        system_hostname: labwall::system_hostname(),
        vrrp_daemon: Default::default(),
    };
    let c = labwall::compile_path(path, &opts)
        .map_err(|d| anyhow!("{}", labwall::diag::render_all(&d)))
        .with_context(|| format!("labwall site {}", path.display()))?;
    Ok(labwall::emit::dhcp_relay_conf(&c.site)
        .map(|r| vec![(in_image(files::DHCP_RELAY_CONF), r)])
        .unwrap_or_default())
}

/// `vbuild release` for an instance profile: one image per server of its default site
/// (`images/dns1.iso`, `images/dns2.iso`) as (what, request); `None` for other profiles.
pub fn release_requests(
    template: &BuildRequest,
    prof: &Profile,
    dir: &Path,
) -> Result<Option<Vec<(String, BuildRequest)>>> {
    if prof.instances.is_none() {
        return Ok(None);
    }
    let path = prof.site.clone().ok_or_else(|| {
        anyhow!(
            "release: profile '{}' has instances but no default site (site = \"FILE\")",
            prof.name
        )
    })?;
    let site = compile(&path, "release", &[])?;
    let mut plan = Vec::new();
    for name in instance_names(&site, &prof.name) {
        let mut req = template.clone();
        req.profile = prof.name.clone();
        req.sets = vec![(VAR.into(), name.clone())];
        req.out = Some(dir.join(format!("{name}.iso")));
        plan.push((format!("{} {name}", prof.name), req));
    }
    Ok(Some(plan))
}

/// The instances of a profile in its site: the VPNSERVER lines for vpn, SERVERS otherwise.
pub fn instance_names(site: &Site, profile: &str) -> Vec<String> {
    if profile == VPN_PROFILE {
        return site.vpn.servers.iter().map(|s| s.name.clone()).collect();
    }
    site.services
        .servers
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .into()
    }

    fn site() -> PathBuf {
        repo().join("labwall/tests/sites/dns/site.lw")
    }

    fn files_of(instance: &str) -> Files {
        let s = compile(&site(), instance, &[]).unwrap();
        instance_files(&s, instance).unwrap()
    }

    fn get<'a>(f: &'a Files, path: &str) -> &'a str {
        let found = f.iter().find(|(p, _)| p == path);
        &found.unwrap_or_else(|| panic!("{path} missing")).1
    }

    #[test]
    fn unknown_instance_names_the_servers_line() {
        let s = compile(&site(), "dns3", &[]).unwrap();
        let e = instance_files(&s, "dns3").unwrap_err().to_string();
        assert!(e.starts_with("site.lw:76: instance dns3"), "{e}");
        assert!(e.contains("SERVERS line (it names dns1 dns2)"), "{e}");
    }

    #[test]
    fn dns1_files_have_its_half_leg_and_radius() {
        let f = files_of("dns1");
        let conf = get(&f, "etc/ramux/dnsmasq.conf");
        assert!(conf.contains("interface=vlan10\n"), "{conf}");
        assert!(conf.contains("dhcp-range=set:vid10,172.16.10.50,172.16.10.74,"));
        let net = get(&f, "etc/ramux/network.ip");
        for l in [
            "link set dev eth0 name vlan10\n",
            "address add 172.16.10.10/24 dev vlan10\n",
            "address add 2001:db8:10::10/64 dev vlan10\n",
            "route add default via 172.16.10.1 dev vlan10\n",
            "route add default via 2001:db8:10::1 dev vlan10\n",
        ] {
            assert!(net.contains(l), "{l} not in\n{net}");
        }
        let start = get(&f, "etc/freeradius/3.0/ramux/start");
        assert!(
            start.contains("secrets_dir /run/ramux/secrets\n"),
            "{start}"
        );
        get(&f, "etc/freeradius/3.0/clients.conf");
    }

    #[test]
    fn instances_are_reproducible_and_differ_only_in_dnsmasq_and_leg() {
        let (a, b, two) = (files_of("dns1"), files_of("dns1"), files_of("dns2"));
        assert_eq!(a, b);
        let paths = |f: &Files| f.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        assert_eq!(paths(&a), paths(&two));
        let differ: Vec<&str> = a
            .iter()
            .zip(&two)
            .filter(|(x, y)| x.1 != y.1)
            .map(|(x, _)| x.0.as_str())
            .collect();
        assert_eq!(differ, ["etc/ramux/dnsmasq.conf", "etc/ramux/network.ip"]);
        let conf2 = get(&two, "etc/ramux/dnsmasq.conf");
        assert!(conf2.contains("dhcp-range=set:vid10,172.16.10.75,172.16.10.99,"));
        let net2 = get(&two, "etc/ramux/network.ip");
        assert!(net2.contains("address add 172.16.10.14/24 dev vlan10\n"));
        assert!(!net2.contains("2001:db8"), "dns2 has no IPv6 HOST address");
    }

    #[test]
    fn services_follow_the_site() {
        let root = repo();
        let router = crate::profile::load(&root, "router").unwrap();
        let has = |p: &Profile, n: &str| p.services.iter().any(|s| s.name == n);
        assert!(has(&router, "dhcp-relay"));
        assert!(!has(&site_services(router.clone(), &[]), "dhcp-relay"));
        let relay = vec![("etc/ramux/dhcp-relay.conf".to_string(), String::new())];
        assert!(has(&site_services(router, &relay), "dhcp-relay"));
        let dns = crate::profile::load(&root, "dns").unwrap();
        let dns = site_services(dns, &files_of("dns1"));
        let radius = dns.services.iter().find(|s| s.name == "radius").unwrap();
        for s in [
            "radius/nas/sw1",
            "radius/nas/vpn1",
            "radius/dot1x.nt",
            "pki/radius.key",
        ] {
            assert!(
                radius.secrets.iter().any(|x| x == s),
                "{s}: {:?}",
                radius.secrets
            );
        }
    }

    #[test]
    fn prepare_names_the_image_after_the_instance() {
        let root = repo();
        let dns = crate::profile::load(&root, "dns").unwrap();
        let mut req = BuildRequest {
            root: root.clone(),
            ..Default::default()
        };
        let e = prepare(&req, &dns).unwrap_err().to_string();
        assert!(e.contains("pass --instance NAME"), "{e}");
        req.sets = vec![(VAR.into(), "dns1".into())];
        let r = prepare(&req, &dns).unwrap();
        assert_eq!(r.out, Some(root.join("images/dns1.iso")));
        assert_eq!(r.sets[0], ("hostname".into(), "dns1".into()));
        let router = crate::profile::load(&root, "router").unwrap();
        let e = prepare(&req, &router).unwrap_err().to_string();
        assert!(e.contains("has no instances"), "{e}");
    }

    fn vpn_site() -> PathBuf {
        repo().join("labwall/tests/sites/vpn/site.lw")
    }

    #[test]
    fn vpn1_files_and_per_vlan_services() {
        let s = compile(&vpn_site(), "vpn1", &[]).unwrap();
        let f = vpn_files(&s, "vpn1").unwrap();
        for p in [
            "etc/ramux/openvpn/vlan10.conf",
            "etc/ramux/openvpn/vlan20.conf",
            "etc/ramux/tinyproxy.conf",
            "etc/ramux/network.ip",
            "etc/ramux/ruleset.nft",
            "etc/ramux/vpn-auth.toml",
            "etc/hosts",
        ] {
            get(&f, p);
        }
        assert!(get(&f, "etc/ramux/network.ip")
            .contains("link add link eth0 name eth0.20 type vlan id 20\n"));
        let e = vpn_files(&s, "vpn3").unwrap_err().to_string();
        assert!(e.contains("instance vpn3 is not a VPNSERVER"), "{e}");
        let vpn = crate::profile::load(&repo(), "vpn").unwrap();
        assert_eq!(vpn.instances.as_deref(), Some("site"));
        let vpn = site_services(vpn, &f);
        let names: Vec<&str> = vpn.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["openvpn-vlan10", "openvpn-vlan20", "relay", "vpn-auth"]
        );
        let o = &vpn.services[1];
        assert_eq!(o.argv, ["/usr/sbin/ramux-openvpn", "20"]);
        for x in [
            "pki/ca.crt",
            "vpn/tls-crypt.key",
            "pki/vpn1.crt",
            "pki/vpn1.key",
        ] {
            assert!(o.secrets.iter().any(|y| y == x), "{x}: {:?}", o.secrets);
        }
        assert_eq!(vpn.services[3].secrets, ["radius/nas/vpn1"]);
        assert_eq!(instance_names(&s, VPN_PROFILE), ["vpn1", "vpn2"]);
        assert_eq!(instance_names(&s, "dns"), ["dns1", "dns2"]);
    }

    #[test]
    fn vpn_instances_differ_in_their_own_files_only() {
        let s = compile(&vpn_site(), "vpn1", &[]).unwrap();
        let (a, b) = (
            vpn_files(&s, "vpn1").unwrap(),
            vpn_files(&s, "vpn2").unwrap(),
        );
        assert_eq!(a, vpn_files(&s, "vpn1").unwrap());
        let two = get(&b, "etc/ramux/openvpn/vlan10.conf");
        assert!(
            two.contains("cert /run/ramux/secrets/pki/vpn2.crt\n"),
            "{two}"
        );
        assert!(get(&b, "etc/ramux/tinyproxy.filter").contains("vpn2"));
    }
}
