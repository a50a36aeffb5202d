fn main() {
    eprintln!("vswitch: not built yet");
    std::process::exit(2);
}
