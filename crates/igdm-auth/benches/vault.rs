//! Vault costs: a read served from the decrypted cache, a read that must
//! decrypt (X25519 key file and scrypt passphrase), and a write.

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use igdm_auth::{CookieCredential, Credential, CredentialStore, Vault, VaultKey};
use secrecy::SecretString;

fn credential() -> Credential {
    let cookies: BTreeMap<String, SecretString> =
        ["sessionid", "csrftoken", "ds_user_id", "mid", "ig_did", "rur"]
            .iter()
            .map(|n| ((*n).to_owned(), SecretString::from(format!("{n}-value-0123456789abcdef"))))
            .collect();
    Credential::Cookies(CookieCredential::new(cookies, "instagram.com", Some("bench".into())))
}

fn bench(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    for (name, key_of) in [
        (
            "x25519",
            Box::new(|home: &std::path::Path| VaultKey::IdentityFile(home.join(Vault::KEY_FILE)))
                as Box<dyn Fn(&std::path::Path) -> VaultKey>,
        ),
        (
            "scrypt_log_n_10",
            Box::new(|_: &std::path::Path| VaultKey::Passphrase {
                passphrase: "bench".into(),
                work_factor: 10,
            }),
        ),
        (
            "scrypt_log_n_18",
            Box::new(|_: &std::path::Path| VaultKey::Passphrase {
                passphrase: "bench".into(),
                work_factor: 18,
            }),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path(), key_of(dir.path())).unwrap();
        rt.block_on(async {
            for i in 0..20 {
                vault.put(&format!("acct{i}"), credential()).await.unwrap();
            }
        });
        let mut g = c.benchmark_group(format!("vault_{name}"));
        g.sample_size(10);
        g.bench_function("get_cached", |b| b.iter(|| rt.block_on(vault.get("acct7")).unwrap()));
        g.bench_function("get_cold", |b| {
            b.iter(|| {
                let fresh = Vault::open(dir.path(), key_of(dir.path())).unwrap();
                rt.block_on(fresh.get("acct7")).unwrap()
            })
        });
        g.bench_function("put", |b| {
            b.iter(|| rt.block_on(vault.put("acct7", credential())).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
