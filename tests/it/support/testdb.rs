//! A fresh, empty store database per test, on either backend: a SQLite file in a tempdir, or a
//! Postgres schema of its own under `SWITCHBOARD_TEST_POSTGRES_URL` (dropped afterwards), and
//! [`on_both_backends!`](crate::on_both_backends), which runs one test body on each.

use std::path::{Path, PathBuf};

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use switchboard::store::Store;

/// Where the Postgres tests find their server; CI sets it, and there they must run.
pub const POSTGRES_URL_VAR: &str = "SWITCHBOARD_TEST_POSTGRES_URL";

/// Each test named, once per backend: `<module>::sqlite::NAME` and `<module>::postgres::NAME`;
/// each is an `async fn NAME(db: &TestDb)` of the calling module.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let db = $crate::support::testdb::TestDb::sqlite();
                    super::$test(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(db) = $crate::support::testdb::TestDb::postgres().await else {
                        return;
                    };
                    super::$test(&db).await;
                }
            )*
        }
    };
}

/// Which database a [`TestDb`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A fresh, empty database for one test; removed when dropped.
pub struct TestDb {
    /// The URL `Store::open` takes.
    pub url: String,
    pub backend: Backend,
    /// The SQLite data dir (not created yet: `Store::open` creates it).
    data_dir: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
    /// `(admin url, schema)` of a Postgres test.
    schema: Option<(String, String)>,
}

impl TestDb {
    /// A SQLite database in a directory that does not exist yet.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        TestDb {
            url: Store::sqlite_url_for(&data_dir),
            backend: Backend::Sqlite,
            data_dir: Some(data_dir),
            _dir: Some(dir),
            schema: None,
        }
    }

    /// A schema of its own on the test Postgres; `None` (skipped, with a note) when the variable
    /// is unset outside CI.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(base) = std::env::var(POSTGRES_URL_VAR) else {
            if std::env::var("CI").is_ok_and(|ci| !ci.is_empty() && ci != "false") {
                panic!(
                    "{POSTGRES_URL_VAR} is not set but CI is: the store's Postgres tests must run \
                     in CI (set it to e.g. postgres://postgres@127.0.0.1:5432/test)"
                );
            }
            eprintln!("note: {POSTGRES_URL_VAR} is not set; skipping the Postgres variant");
            return None;
        };
        let schema = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&base)
            .await
            .unwrap_or_else(|err| panic!("connect to {POSTGRES_URL_VAR}: {err}"));
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .expect("create test schema");
        admin.close().await.expect("close admin connection");
        let mut url = url::Url::parse(&base).expect("postgres url");
        url.query_pairs_mut()
            .append_pair("options[search_path]", &schema);
        Some(TestDb {
            url: url.to_string(),
            backend: Backend::Postgres,
            data_dir: None,
            _dir: None,
            schema: Some((base, schema)),
        })
    }

    /// The SQLite data dir, for a test that opens the file itself before the store does.
    pub fn sqlite_data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// Open the store on this database (fresh: nothing to interrupt).
    pub async fn open(&self) -> Store {
        let (store, interrupted) = Store::open(&self.url).await.expect("open store");
        assert_eq!(interrupted, 0, "a fresh database has no interrupted runs");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, schema)) = self.schema.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on async work: use a thread
        // with its own runtime.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&base).await?;
                sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&mut admin)
                    .await?;
                admin.close().await
            })
        });
        if let Ok(Err(err)) = cleanup.join() {
            eprintln!("warning: could not drop a test schema: {err}");
        }
    }
}
