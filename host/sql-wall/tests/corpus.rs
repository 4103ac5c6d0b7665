//! Every input of the fuzz corpus (`fuzz/corpus/policy/`: the attack tests' statements, what
//! the first-party connectors send, and what fuzzing found) through the oracle: whatever the
//! policy accepts must execute as one statement inside the grant. Fast and deterministic; the
//! fuzzer (`cargo xtask fuzz`) searches beyond it.

mod oracle;

#[test]
fn every_corpus_input_keeps_the_invariant() {
    // On the stack the host gives the policy (the corpus holds the deepest inputs fuzzing found).
    std::thread::Builder::new()
        .stack_size(sluice_sql_wall::STACK_BYTES)
        .spawn(replay)
        .unwrap()
        .join()
        .unwrap();
}

fn replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/policy");
    let mut n = 0;
    let mut accepted = 0;
    for entry in std::fs::read_dir(&dir).expect("the committed corpus") {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let Ok(sql) = std::str::from_utf8(&bytes) else {
            continue;
        };
        oracle::check_all(sql);
        n += 1;
        accepted += oracle::scopes()
            .iter()
            .filter(|(d, s)| sluice_sql_wall::check(*d, s, sql).is_ok())
            .count();
    }
    assert!(n > 100, "the corpus is there ({n} inputs)");
    assert!(
        accepted > 50,
        "some inputs are accepted somewhere ({accepted})"
    );
}
