# Allowed cluster sizes by team.
#
# Each team lists the size profiles it may create in the data document:
#
#   {"teams": {"web": {"sizes": ["small", "medium"]}, "*": {"sizes": ["small"]}}}
#
# The "*" entry is for every team without its own, and for callers without a team. A team
# with neither gets no cluster at all (the message says what to add). Admins are not limited.
#
# A create without a size gets the server's `clusters.default_size`, which the policy does not
# see: `data.default_size` says which one it is ("small" if unset).
#
# Try it:
#   vcm policy eval --policy deploy/policies/team_sizes.rego --data deploy/policies/data.json \
#     --action cluster.create --role developer --team web --request '{"size": "large"}'
package vcm

requested_size := input.request.size

requested_size := object.get(data, "default_size", "small") if not input.request.size

# The sizes the caller's team may create; undefined when the data has no entry for it.
team_allowed_sizes := data.teams[input.principal.team].sizes

team_allowed_sizes := data.teams["*"].sizes if not data.teams[input.principal.team].sizes

deny contains msg if {
	input.action == "cluster.create"
	input.principal.role != "admin"
	sizes := team_allowed_sizes
	not requested_size in sizes
	msg := sprintf("team %s may create %s clusters, not %s", [team_name, concat(", ", sizes), requested_size])
}

deny contains msg if {
	input.action == "cluster.create"
	input.principal.role != "admin"
	not team_allowed_sizes
	msg := sprintf("team %s may create no cluster: the policy data lists no sizes for it (add teams.%s.sizes, or teams[\"*\"].sizes)", [team_name, team_name])
}

# `team` is null for a caller without one.
team_name := input.principal.team if is_string(input.principal.team)

team_name := "(none)" if not is_string(input.principal.team)
