fn main() {
    eprintln!("vbuild: not built yet");
    std::process::exit(2);
}
