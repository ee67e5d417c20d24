//! What a pull request's commit should show, from the pull request, its cluster and whether
//! the engine is failing to carry it out. Pure: the reporter queues what this returns.

use super::super::{Provider, cluster_name};
use crate::domain::{Cluster, DeleteReason, Phase, PullRequest, ReportState, StatusWant};

/// The status an open pull request's head commit should show. `cluster` is the cluster the
/// engine made for it (any phase), `failing` the error of its last failed attempt.
pub fn for_open(
    pr: &PullRequest,
    cluster: Option<&Cluster>,
    failing: Option<&str>,
    public_url: &str,
) -> StatusWant {
    let provider = provider_of(pr);
    let name = cluster_name(provider, &pr.repository, pr.number);
    // The cluster's page in the dashboard (a person clicks it), by id or, before there is a
    // cluster, by the name it will have.
    let link = match cluster {
        Some(c) => format!("{public_url}{}#/clusters/{}", crate::http::UI_PATH, c.id),
        None => format!("{public_url}{}#/clusters/{name}", crate::http::UI_PATH),
    };
    let at_head = cluster.filter(|c| c.labels.get("sha") == Some(pr.head_sha.as_str()));
    let (state, description) = match (failing, at_head) {
        (Some(error), _) => (
            ReportState::Error,
            format!("vcm could not make cluster {name}: {error}"),
        ),
        (None, None) => (ReportState::Pending, format!("Making cluster {name}")),
        (None, Some(_)) if pr.pending() => (ReportState::Pending, format!("Making cluster {name}")),
        (None, Some(c)) => match c.phase {
            Phase::Pending | Phase::Provisioning => {
                (ReportState::Pending, format!("Making cluster {name}"))
            }
            Phase::Ready => (
                ReportState::Ready,
                format!(
                    "Cluster {name} is ready (Kubernetes {}, {})",
                    c.kubernetes_version, c.size
                ),
            ),
            Phase::Failed => (
                ReportState::Failed,
                format!("Cluster {name} failed: {}", c.message),
            ),
            Phase::Deleting | Phase::Deleted => (
                ReportState::Stopped,
                format!(
                    "Cluster {name} was deleted ({}); push a commit for a new one",
                    reason(c.delete_reason)
                ),
            ),
        },
    };
    StatusWant {
        pr_key: pr.key.clone(),
        sha: pr.head_sha.clone(),
        provider: pr.provider.clone(),
        repository: pr.repository.clone(),
        branch: pr.branch.clone(),
        installation_id: pr.installation_id,
        state,
        description,
        target_url: link,
    }
}

/// What an earlier status of a closed pull request becomes. Bitbucket: `STOPPED`, whatever
/// it showed. GitHub: a commit that showed Ready, failed or stopped keeps it (a red mark on a
/// merged commit would stay in the main branch's history); one still showing "being made"
/// (or vcm's error) gets a final word. `None`: leave it.
pub fn for_closed(pr: &PullRequest, shown: &StatusWant) -> Option<StatusWant> {
    let provider = provider_of(pr);
    let settled = match provider {
        Provider::Github => !matches!(shown.state, ReportState::Pending | ReportState::Error),
        Provider::Bitbucket => matches!(shown.state, ReportState::Stopped | ReportState::Closed),
    };
    if settled {
        return None;
    }
    let name = cluster_name(provider, &pr.repository, pr.number);
    Some(StatusWant {
        state: ReportState::Closed,
        description: format!("Cluster {name} was deleted: the pull request closed"),
        ..shown.clone()
    })
}

fn reason(r: Option<DeleteReason>) -> &'static str {
    match r {
        Some(DeleteReason::Expired) => "its TTL ran out",
        Some(DeleteReason::Idle) => "it was idle too long",
        Some(DeleteReason::PullRequestClosed) => "the pull request closed",
        Some(DeleteReason::Requested) | None => "someone deleted it",
    }
}

fn provider_of(pr: &PullRequest) -> Provider {
    if pr.provider == "github" {
        Provider::Github
    } else {
        Provider::Bitbucket
    }
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    const URL: &str = "https://vcm.example.com";

    fn pr(open: bool, generation: i64, done: i64) -> PullRequest {
        PullRequest {
            key: "github:acme/web#7".into(),
            provider: "github".into(),
            repository: "acme/web".into(),
            number: 7,
            open,
            head_sha: "bbb".into(),
            branch: "feature".into(),
            url: "https://github.com/acme/web/pull/7".into(),
            installation_id: Some(5),
            repository_id: None,
            version_ms: 1,
            generation,
            done_generation: done,
            cluster_id: None,
            updated_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn cluster(phase: Phase, sha: &str) -> Cluster {
        let mut c = crate::store::conformance::mk_cluster("gh-web-7-abcdef");
        c.phase = phase;
        c.labels = crate::domain::Labels::parse([("sha".to_owned(), sha.to_owned())].into())
            .expect("labels");
        c
    }

    #[test]
    fn an_open_pull_request_shows_its_cluster_phase_at_its_head_commit() {
        let done = pr(true, 1, 1);
        let cases = [
            (
                Phase::Provisioning,
                "bbb",
                ReportState::Pending,
                "Making cluster",
            ),
            (
                Phase::Ready,
                "bbb",
                ReportState::Ready,
                "is ready (Kubernetes",
            ),
            (Phase::Failed, "bbb", ReportState::Failed, "failed:"),
            (Phase::Deleted, "bbb", ReportState::Stopped, "push a commit"),
            // Still at the old commit: being moved.
            (Phase::Ready, "aaa", ReportState::Pending, "Making cluster"),
        ];
        for (phase, sha, state, says) in cases {
            let c = cluster(phase, sha);
            let w = for_open(&done, Some(&c), None, URL);
            assert_eq!(w.state, state, "{phase:?} at {sha}");
            assert!(w.description.contains(says), "{}", w.description);
            assert_eq!(w.target_url, format!("{URL}/ui/#/clusters/{}", c.id));
            assert_eq!((w.sha.as_str(), w.branch.as_str()), ("bbb", "feature"));
        }
        let ready = cluster(Phase::Ready, "bbb");
        assert_eq!(
            for_open(&pr(true, 2, 1), Some(&ready), None, URL).state,
            ReportState::Pending,
            "a change not carried out yet"
        );
        let failing = for_open(&done, Some(&ready), Some("no host has room"), URL);
        assert_eq!(failing.state, ReportState::Error);
        assert!(failing.description.ends_with("no host has room"));
        let none = for_open(&pr(true, 1, 0), None, None, URL);
        assert!(
            none.target_url
                .starts_with(&format!("{URL}/ui/#/clusters/gh-web-7-"))
        );
    }

    #[test]
    fn a_closed_pull_request_stops_bitbucket_statuses_and_settles_only_unfinished_github_ones() {
        let open = pr(true, 1, 1);
        let making = for_open(&open, None, None, URL);
        let ready = StatusWant {
            state: ReportState::Ready,
            ..making.clone()
        };
        let closed = pr(false, 2, 2);
        assert_eq!(
            for_closed(&closed, &ready),
            None,
            "GitHub keeps a Ready mark"
        );
        let settled = for_closed(&closed, &making).expect("settled");
        assert_eq!(settled.state, ReportState::Closed);
        assert_eq!(for_closed(&closed, &settled), None, "once");
        let bb = PullRequest {
            provider: "bitbucket".into(),
            ..closed
        };
        let stopped = for_closed(&bb, &ready).expect("stopped");
        assert_eq!(stopped.state, ReportState::Closed);
        assert!(stopped.description.contains("pull request closed"));
        assert_eq!(for_closed(&bb, &stopped), None, "once");
    }

    #[test]
    fn descriptions_are_cut_to_the_limit_on_a_character_boundary() {
        assert_eq!(cut("short", 140), "short");
        let long = "ü".repeat(200);
        let c = cut(&long, 140);
        assert_eq!(c.chars().count(), 140);
        assert!(c.ends_with('…'));
    }
}
