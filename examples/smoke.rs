use std::time::{Duration, Instant};
fn main() {
    for flavor in ["ct", "mt"] {
        let rt = if flavor == "ct" {
            blitz_io::runtime::Builder::new_current_thread().build().unwrap()
        } else {
            blitz_io::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap()
        };
        let t = Instant::now();
        let n = rt.block_on(async {
            let mut hs = Vec::new();
            for i in 0..100_000u64 {
                hs.push(blitz_io::task::spawn(async move { i }));
            }
            let mut s = 0;
            for h in hs { s += h.await.unwrap(); }
            s
        });
        println!("{flavor}: sum {n} in {:?}", t.elapsed());
        let t = Instant::now();
        rt.block_on(async {
            blitz_io::time::sleep(Duration::from_millis(50)).await;
            let h = blitz_io::task::spawn(async { panic!("boom") });
            assert!(h.await.unwrap_err().is_panic());
            let h = blitz_io::task::spawn(std::future::pending::<()>());
            h.abort();
            assert!(h.await.unwrap_err().is_cancelled());
            let v = blitz_io::task::spawn_blocking(|| 5).await.unwrap();
            assert_eq!(v, 5);
        });
        println!("{flavor}: sleep etc {:?}", t.elapsed());
        rt.spawn(std::future::pending::<()>());
        drop(rt);
    }
    // fallback
    let t = Instant::now();
    futures_executor::block_on(blitz_io::time::sleep(Duration::from_millis(30)));
    println!("fallback sleep {:?}", t.elapsed());
}
