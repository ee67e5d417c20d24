//! One way to wait for a condition: poll it at an interval until it holds, a hard error stops
//! the wait, or the deadline passes with the last reason it did not hold.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// One look at the condition.
#[derive(Debug)]
pub enum Poll<T> {
    /// It holds; this is the result.
    Ready(T),
    /// Not yet, and why (reported if the deadline passes).
    Pending(String),
}

/// Looks at `check` every `every` until it is [`Poll::Ready`], failing when it returns an
/// error (nothing to wait for) or when `timeout` passes (`"<what>: not done after …
/// (<last reason>)"`).
pub async fn until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Poll<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let why = match check().await? {
            Poll::Ready(v) => return Ok(v),
            Poll::Pending(why) => why,
        };
        if Instant::now() >= deadline {
            anyhow::bail!("{what}: not done after {timeout:?} ({why})");
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn polls_until_ready_and_reports_the_last_reason_on_timeout() {
        let mut n = 0;
        let got = until(
            "counting",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                let n = n;
                async move {
                    Ok(if n == 3 {
                        Poll::Ready(n)
                    } else {
                        Poll::Pending(format!("at {n}"))
                    })
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(got, 3);

        let err = until::<(), _, _>(
            "never",
            Duration::from_millis(20),
            Duration::from_millis(5),
            || async { Ok(Poll::Pending("still no".into())) },
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().starts_with("never: not done after")
                && err.to_string().contains("still no"),
            "{err}"
        );

        let err = until::<(), _, _>(
            "stop",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || async { anyhow::bail!("gone") },
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "gone", "an error ends the wait at once");
    }
}
