//! Lists every device libgrey sees: name, memory and compute units. `cargo run` in this directory.

fn dash(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn main() {
    let devices = match grey::Context::new().and_then(|ctx| ctx.devices()) {
        Ok(devices) => devices,
        Err(err) => {
            eprintln!("detect: {}", err);
            std::process::exit(1);
        }
    };
    println!("libgrey {}: {} device(s)", grey::version(), devices.len());
    for d in &devices {
        println!(
            "device {}: {}, memory {} bytes, {} compute units",
            d.index,
            d.name().unwrap_or("-"),
            dash(d.memory_total_bytes()),
            dash(d.compute_units())
        );
    }
}
