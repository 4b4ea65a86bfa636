use std::time::{Duration, Instant};
fn main() {
    for flavor in ["ct", "mt"] {
        let rt = if flavor == "ct" {
            blitz_io::runtime::Builder::new_current_thread().build().unwrap()
        } else {
            blitz_io::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap()
        };
        rt.block_on(async {
            let t = Instant::now();
            blitz_io::time::sleep(Duration::from_millis(50)).await;
            println!("{flavor} sleep50 {:?}", t.elapsed());
            let t = Instant::now();
            let h = blitz_io::task::spawn(async { 1 });
            h.await.unwrap();
            println!("{flavor} spawn {:?}", t.elapsed());
            let t = Instant::now();
            let h = blitz_io::task::spawn(std::future::pending::<()>());
            h.abort();
            assert!(h.await.unwrap_err().is_cancelled());
            println!("{flavor} abort {:?}", t.elapsed());
            let t = Instant::now();
            let v = blitz_io::task::spawn_blocking(|| 5).await.unwrap();
            assert_eq!(v, 5);
            println!("{flavor} blocking {:?}", t.elapsed());
            let t = Instant::now();
            let v = blitz_io::task::spawn_blocking(|| 5).await.unwrap();
            assert_eq!(v, 5);
            println!("{flavor} blocking2 {:?}", t.elapsed());
        });
        let t = Instant::now();
        drop(rt);
        println!("{flavor} drop {:?}", t.elapsed());
    }
}
