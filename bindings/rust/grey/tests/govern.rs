// The governor and scheduler from Rust.
use grey::{Config, Context, Error, Governor, WAIT_FOREVER};

#[test]
fn admit_release_stop_and_resume() {
    let ctx = Context::builder().backends(&["host"]).build().unwrap();
    let gov = Governor::new(&ctx, 0).unwrap();
    let app = gov.tenant("rust", 2.0, 1).unwrap();
    gov.step().unwrap();
    let a = app.admit(0, 1000, WAIT_FOREVER).unwrap();
    assert_eq!(a.device, 0);
    assert!(!app.should_yield(a.ticket).unwrap());
    app.release(a.ticket, 500).unwrap();
    let s = app.stats().unwrap();
    assert_eq!((s.name.as_str(), s.admitted_count, s.actual_cost_ns, s.weight), ("rust", 1, 500, 2.0));

    let big = app.admit(0, 10_000_000_000, 0).unwrap();
    let ticket = app.submit(0, 1000).unwrap();
    assert!(matches!(app.wait(ticket, 0), Err(Error::Timeout(_))));
    gov.emergency_stop("from rust").unwrap();
    assert!(matches!(app.wait(ticket, 0), Err(Error::Stopped(_))));
    let state = gov.state().unwrap();
    assert!(state.stopped);
    assert_eq!(state.stop_reason, "from rust");
    assert_eq!(gov.device(0).unwrap().mode, "stopped");
    gov.resume().unwrap();
    app.release(big.ticket, 1).unwrap();
    assert!(matches!(app.set_weight(-1.0), Err(Error::InvalidArgument(_))));
    assert_eq!(gov.tenants().unwrap().len(), 1);
    gov.configure(&Config::new(Some("aggressive")).unwrap()).unwrap();
    assert_eq!(gov.state().unwrap().priority_levels, 5);
    assert!(matches!(gov.tenant("bad\0name", 1.0, 0), Err(Error::Nul(_))));
    assert!(matches!(gov.emergency_stop("x\0y"), Err(Error::Nul(_))));
}
