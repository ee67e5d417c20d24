# Large clusters only during business hours: Monday to Friday, 08:00 to 18:00 UTC.
#
# Large clusters cost the most; outside business hours nobody is there to use them, so they
# are most likely forgotten. Smaller sizes are never limited, nor are admins.
#
# The time is the request's, `input.time` (RFC 3339), not the clock: `vcm policy eval --time`
# tests the rule at any time you like.
#
# Try it (a Saturday):
#   vcm policy eval --policy deploy/policies/business_hours.rego \
#     --action cluster.create --role developer --request '{"size": "large"}' \
#     --time 2026-03-07T10:00:00Z
package vcm

# Sizes that count as large.
business_hours_sizes := {"large"}

business_hours_start := 8

business_hours_end := 18

deny contains msg if {
	input.action == "cluster.create"
	input.principal.role != "admin"
	input.request.size in business_hours_sizes
	not within_business_hours
	msg := sprintf("%s clusters are created only Monday to Friday, %02d:00 to %02d:00 UTC (it is %s)", [input.request.size, business_hours_start, business_hours_end, input.time])
}

within_business_hours if {
	ns := time.parse_rfc3339_ns(input.time)
	not time.weekday(ns) in {"Saturday", "Sunday"}
	[hour, _, _] := time.clock(ns)
	hour >= business_hours_start
	hour < business_hours_end
}
