// NB: `sqlx::migrate!` embeds migrations at compile time but does not tell cargo to rebuild when
// a migration file is added; this does. The pinned Kubernetes versions are compiled in too.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=scripts/k8s-versions.env");
}
