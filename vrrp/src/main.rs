fn main() {
    eprintln!("vrrpd: not built yet");
    std::process::exit(2);
}
