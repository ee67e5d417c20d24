# Maximum cluster lifetime by role.
#
# A `ci` caller may ask for at most 2 hours, a `developer` for at most 24; other roles are not
# limited here (admins), or cannot create clusters at all (viewers). The limit applies when a
# cluster is created and when its TTL is changed (`cluster.update`), to `input.request.ttl`,
# written as the API takes it: "90m", "2h", "7d".
#
# A request without a ttl gets the server's `clusters.default_ttl`, which the policy does not
# see: keep that default under the smallest limit below. A malformed ttl is left to the server,
# which refuses it (422).
#
# Try it:
#   vcm policy eval --policy deploy/policies/max_ttl.rego \
#     --action cluster.create --role ci --request '{"ttl": "4h"}'
package vcm

# Hours each role may ask for. Edit to taste; a role not listed has no limit here.
max_ttl_hours_by_role := {"ci": 2, "developer": 24}

deny contains msg if {
	input.action in {"cluster.create", "cluster.update"}
	limit := max_ttl_hours_by_role[input.principal.role]
	ttl := input.request.ttl
	ttl_hours(ttl) > limit
	msg := sprintf("ttl %s is longer than the %dh the %s role may ask for", [ttl, limit, input.principal.role])
}

ttl_seconds_per_unit := {"s": 1, "m": 60, "h": 3600, "d": 86400}

ttl_digits := {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

# The hours a duration such as "90m" stands for (1.5); undefined if it is not one.
ttl_hours(ttl) := hours if {
	is_string(ttl)
	count(ttl) > 1
	per_unit := ttl_seconds_per_unit[substring(ttl, count(ttl) - 1, 1)]
	number := substring(ttl, 0, count(ttl) - 1)
	every c in split(number, "") {
		c in ttl_digits
	}
	hours := (to_number(number) * per_unit) / 3600
}
