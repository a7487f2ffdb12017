fn main() {
    println!("curate");
}
