//! Stores for the store benchmark (included with `#[path]`): the tokens, the GET phases'
//! cluster and the list phases' records, written through the store API; and how long the
//! store alone takes for a page.

use std::sync::Arc;

use vcm::domain::{ApiToken, NewEvent};
use vcm::store::Store;
use vcm::store::conformance::mk_cluster;

/// The developer's team in the list phases.
pub const TEAM: &str = "web";

/// Migrations, the tokens, the GET phases' cluster, and `records` more clusters (one in ten
/// of team [`TEAM`]).
pub async fn prepare(url: &str, tokens: &[&ApiToken], records: usize) -> anyhow::Result<String> {
    let store = vcm::store::open(url).await?;
    for token in tokens {
        store.insert_token(token).await?;
    }
    let spare = mk_cluster("bench-get");
    store
        .insert_cluster(&spare, &NewEvent::new("created", "bench"), None)
        .await?;
    let writers = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store: Arc<dyn Store> = store.clone();
        tasks.spawn(async move {
            for i in (w..records).step_by(writers) {
                let mut c = mk_cluster(&format!("rec-{i}"));
                c.team = (i % 10 == 0).then(|| TEAM.to_owned());
                let event = NewEvent::new("created", "bench");
                store.insert_cluster(&c, &event, None).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(spare.id.as_str().to_owned())
}

/// `Store::list_clusters` of the first page of 100, called from this process one after the
/// other (no HTTP, no load): p50 and p99 in ms of 500 calls. On PostgreSQL, also the plan.
pub async fn store_alone(url: &str) -> anyhow::Result<(f64, f64)> {
    let store = vcm::store::open(url).await?;
    let filter = vcm::store::ClusterFilter {
        limit: 100,
        ..Default::default()
    };
    let mut took = Vec::new();
    for _ in 0..500 {
        let t = std::time::Instant::now();
        let page = store.list_clusters(&filter).await?;
        took.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(page.items.len() == 100, "a page of {}", page.items.len());
    }
    took.sort_by(f64::total_cmp);
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await?;
        for (who, filter) in [
            ("admin", "true"),
            ("developer", "(owner = 'token:bench-dev' OR team = 'web')"),
            (
                "lone developer",
                "(owner = 'token:bench-lone' OR team = 'lone')",
            ),
        ] {
            let sql = format!(
                "EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM clusters WHERE {filter} \
                 ORDER BY created_ms, id LIMIT 101"
            );
            let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await?;
            eprintln!(
                "PostgreSQL, the {who}'s first page:\n  {}",
                plan.join("\n  ")
            );
        }
    }
    Ok((took[took.len() / 2], took[took.len() * 99 / 100]))
}
