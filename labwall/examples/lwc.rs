fn main() {
    let a: Vec<String> = std::env::args().collect();
    match labwall::compile_file(
        std::path::Path::new(&a[1]),
        &a[2],
        &[("HOSTNAME".into(), "fw-a".into())],
    ) {
        Ok(o) => {
            print!(
                "{}\n=====\n{}\n=====\n{}\n=====\n{}",
                o.network_ip, o.sysctl_conf, o.ruleset_nft, o.keepalived_conf
            );
        }
        Err(e) => eprint!("{e}"),
    }
}
