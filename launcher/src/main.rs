fn main() {
    eprintln!("vlaunch: not built yet");
    std::process::exit(2);
}
