# CI clusters must say where they come from: the labels `repo` and `pr`.
#
# With them, `vcm cluster list -l repo=org/app` finds a pipeline's clusters and a forgotten
# one can be traced to its pull request. The rule applies to callers with the `ci` role
# creating a cluster; clusters made by vcm's own webhook engine carry these labels already.
#
# Try it:
#   vcm policy eval --policy deploy/policies/ci_labels.rego \
#     --action cluster.create --role ci --request '{"labels": {"repo": "org-app"}}'
package vcm

required_ci_labels := ["repo", "pr"]

deny contains msg if {
	input.action == "cluster.create"
	input.principal.role == "ci"
	some label in required_ci_labels
	not has_ci_label(label)
	msg := sprintf("ci clusters need the label %s (e.g. --label %s=...)", [label, label])
}

has_ci_label(name) if {
	value := input.request.labels[name]
	is_string(value)
	value != ""
}
