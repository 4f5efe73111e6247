#!/usr/bin/env bash
# scripts/mutants.sh — break behaviours on purpose and check that the tests
# of the package that owns each one notice (docs/testing.md).
#
# Every mutant is one sed edit of one file. The script copies the tree
# (tracked and untracked files, not ignored ones) to a temporary
# directory, applies each mutant there on its own, runs `go test` on the
# owning package, restores the file, and reports:
#
#   killed    the tests failed: they guard the behaviour
#   SURVIVED  the tests passed with the behaviour broken
#   STALE     the edit no longer applies (the code moved): update the mutant
#   BROKEN    the mutant does not compile: fix the mutant
#
# The owning packages' tests must pass on the unbroken copy first. It exits
# non-zero unless every mutant is killed. The working tree is never touched.
#
# Usage: scripts/mutants.sh [-l] [REGEX]
#   -l      list the mutants and exit
#   REGEX   run only the mutants whose name matches (grep -E)
# Environment: GO (default go), MUTANT_TIMEOUT (per package run, default 5m),
# QUOTEHUB_TEST_REDIS as for the tests. The store/redis mutants need Redis
# (scripts/services.sh): without it their tests skip, and the mutants are
# reported as survivors.
set -euo pipefail

GO=${GO:-go}
TIMEOUT=${MUTANT_TIMEOUT:-5m}

# name ~ package ~ file ~ sed script (GNU sed, basic regexps) ~ go test -run
# filter (optional) ~ what breaks
MUTANTS=$(cat <<'EOF'
stale-read-waits~./refresher~refresher/read.go~s/^\t\t\tr\.startFetch(ctx, st\.src, \[\]string{sym}, false, time\.Time{})$/\t\t\t<-r.startFetch(ctx, st.src, []string{sym}, false, time.Time{})[sym].done/~~a stale read waits for its refresh instead of answering at once
stale-read-waits-http~./web~refresher/read.go~s/^\t\t\tr\.startFetch(ctx, st\.src, \[\]string{sym}, false, time\.Time{})$/\t\t\t<-r.startFetch(ctx, st.src, []string{sym}, false, time.Time{})[sym].done/~TestQuoteRead~the same, seen through GET /v1/quotes/{symbol}
no-single-flight~./refresher~refresher/refresher.go~s/^\t\tif st\.flight != nil {$/\t\tif false {/~~every fetch ignores the one in flight: cold reads each ask the upstream
inactive-still-fetched~./refresher~refresher/refresher.go~s/r\.opts\.Active\.Active(ctx, r\.opts\.Now()\.Add(-r\.opts\.ActiveWindow))/r.opts.Active.Active(ctx, time.Time{})/; s/r\.opts\.Active\.Prune(ctx, cut)/r.opts.Active.Prune(ctx, time.Time{})/~~the active window is never applied: symbols nobody uses keep being fetched
deactivate-noop~./refresher~refresher/refresher.go~s/^\tr\.touchAsync(symbol, false)$/\t_ = symbol/~~Deactivate does not start the window: a symbol leaves up to a heartbeat early
degraded-ignored~./refresher~refresher/refresher.go~s/^\tif degraded { \/\/ what local clients use.*$/\tif false {/~~degraded mode refreshes only owned symbols: local clients get no prices
degraded-forgets-reads~./refresher~refresher/refresher.go~s/^\t\t\tsyms = append(syms, sym)$/\t\t\t_ = sym/~~degraded mode forgets recent HTTP reads
fetch-lock-ignored~./refresher~refresher/read.go~s/return ok || err != nil$/return ok || err != nil || true/~~a read fetches although another node holds the symbol's fetch lock
retry-after-ignored~./refresher/upstream/upbit~refresher/upstream/upbit/upbit.go~0,/after := retryAfter(resp\.Header\.Get("Retry-After"), p\.now())/s//after := time.Duration(0)/~TestFetch~the Upbit adapter ignores Retry-After on a 429 and waits its default second
remaining-req-ignored~./refresher/upstream/upbit~refresher/upstream/upbit/upbit.go~s/^\tp\.pace(g, resp\.Header\.Get("Remaining-Req"))$/\t_ = g/~TestFetch~the Upbit adapter ignores Remaining-Req and runs into 429s
ws-origin-dropped~./web~web/ws.go~s/origin != "" && !s\.originAllowed(c\.Request(), origin) {/origin != "" \&\& false {/~~the WebSocket handshake accepts every origin (serveWS checks it before the handshake)
cors-allows-all~./web~web/server.go~s/allowed := s\.originAllowed(r, origin)/allowed := true/~TestCORS~CORS grants every origin, on requests and preflights
ip-connections-unlimited~./web~web/limits.go~s/case g\.l\.Conns > 0 && g\.conns\[a\] >= g\.l\.Conns:/case false:/~TestLimitConnectionsPerAddress~one address may hold any number of connections
ip-pending-unlimited~./web~web/limits.go~s/case g\.l\.Pending > 0 && g\.pending\[a\] >= g\.l\.Pending:/case false:/~TestLimitPendingPerAddress~one address may hold any number of half-open handshakes
ip-streams-unlimited~./web~web/limits.go~s/if g\.streams\[a\] >= g\.l\.Streams {/if false {/~TestLimitStreamsPerAddress~one address may hold any number of WebSockets and SSE streams
ip-reads-unlimited~./web~web/limits.go~s/ok := rd\.lim\.AllowN(now, 1)/ok := true/~TestLimitReadsPerAddress~reads are not rate limited per address
xff-leftmost-trusted~./web~web/limits.go~s/for i := len(hops) - 1; i >= 0; i-- {/for i := 0; i < len(hops); i++ {/~TestLimitReadsPerAddress~the client's own leftmost X-Forwarded-For hop names it, so it picks its address
control-frames-unlimited~./web~web/internal/wire/websocket.go~s/if r\.allow != nil && op != OpClose && !r\.allow() {/if false {/~TestLimitControlFrames~pings and pongs are not rate limited
host-trusted~./web~web/limits.go~s/^\tif g\.l\.Hosts == nil {$/\tif true {/~TestHostAllowList~any Host is served and trusted by the same-origin check (DNS rebinding)
auth-alg-not-pinned~./auth~auth/auth.go~s/^\t\tjwt\.WithValidMethods(v\.keys\.algs()),$//; s/if t\.Method\.Alg() != k\.alg {/if false {/~~the key no longer decides the algorithm: a token names its own
auth-exp-optional~./auth~auth/auth.go~s/^\t\tjwt\.WithExpirationRequired(),$//~~a token without exp never expires
auth-issuer-unchecked~./auth~auth/auth.go~s/popts = append(popts, jwt\.WithIssuer(opts\.Issuer))/_ = opts.Issuer/~~a configured iss is not checked
auth-sub-optional~./auth~auth/auth.go~s/case claims\.Subject == "":/case false:/~~a token without sub is a user with an empty id
jwks-fetch-unlimited~./auth~auth/jwks.go~s/now\.Sub(j\.tried) < j\.opts\.JWKSMinInterval/false/~TestJWKS~every unknown kid fetches the key set again: forged kids hammer the issuer
jwks-keeps-retired-keys~./auth~auth/jwks.go~s/j\.opts\.Now()\.Sub(j\.fetched) > j\.opts\.JWKSMaxAge/false/~TestJWKS~a fetched key set is used for ever: retired keys keep working
streams-ignore-auth-required~./web~web/auth.go~s/return s\.authenticate(c\.Request(), true, s\.opts\.AuthRequired)/return s.authenticate(c.Request(), true, false)/~TestAuthRequired~with auth required, /v1/ws and /v1/sse stay anonymous
query-token-everywhere~./web~web/auth.go~s/p, _, err := s\.authenticate(c\.Request(), false, true)/p, _, err := s.authenticate(c.Request(), true, true)/~TestMe|TestAuthRequired~token= is accepted on every route, not only on streams
token-expiry-silent~./web~web/auth.go~s/^\t\tclient\.SendControl(frame)$/\t\t_ = frame/~TestWSTokenExpires|TestSSEToken~a stream whose token expires is cut without an error frame or event
token-logged~./web~web/server.go~s/Str("uri", redactURI(c\.Request()\.RequestURI))/Str("uri", c.Request().RequestURI)/~TestTokenRedactedFromLogs~the request log prints token= as it came
readyz-ignores-checks~./web~web/server.go~s/if err := chk\.Ready(ctx); err != nil {/if err := chk.Ready(ctx); err != nil \&\& false {/~~/readyz answers ready with a dependency down
x-cache-always-hit~./web~web/read.go~s/h\.Set("X-Cache", rd\.Result)/h.Set("X-Cache", "hit")/~~X-Cache says hit for stale values and misses
search-limit-unclamped~./web~web/read.go~s/limit = min(max(n, 1), 100)/limit = max(n, 1)/~~symbol search returns more than 100 entries
sse-id-stuck~./web~web/sse.go~s/^\t\tt\.id++$//~~SSE events all carry the same id
sse-no-keepalive~./web~web/sse.go~s/c\.SendControl(keepaliveLine)/_ = keepaliveLine/~~a silent SSE stream never gets a keepalive comment
follow-reads-unlocked~./hub~hub/follow.go~s/^\t\tl, err := lists\.List(ctx, p\.UserID, n)$/\t\tc.fmu.Unlock()\n\t\tl, err := lists.List(ctx, p.UserID, n)\n\t\tc.fmu.Lock()/~TestFollowRacesADeletion~a follow reads its lists unlocked: a list deleted meanwhile stays followed
board-etag-never-matches~./web~web/board/board.go~s/if t == etag || t == "\*" {/if false {/~TestBoardFiles~the board's files never answer a revalidation with 304
board-no-csp~./web~web/board/board.go~s/h\.Set("Content-Security-Policy", CSP)//~TestBoardFiles~the board's files come without their Content-Security-Policy
board-serves-page-for-any-file~./web~web/board/board.go~s/return echo\.ErrNotFound/fl = f.byName["index.html"]/~TestBoardLeavesOtherPathsToTheAPI~an unknown file under /board/ gets the page instead of the JSON 404
board-writes-per-message~./cmd/quotehub~web/board/static/table.js~s/    if (this\.dirty\.size) this\.schedule();/    if (this.dirty.size) this.flush(performance.now());/~TestBoard/TwoHundredSymbols~the board writes the DOM for every message instead of once per animation frame (needs chromium)
board-never-reconnects~./cmd/quotehub~web/board/static/feed.js~s/this\.timer = setTimeout(() => this\.open(), wait);//~TestBoard/ReconnectsAfterRestart~the board stays disconnected after the node restarts (needs chromium)
board-name-lost-as-flash-ends~./cmd/quotehub~web/board/static/table.js~s/^        this\.flashing\.delete(row);$/        this.flashing.delete(row);\n        this.named.delete(row);/~TestBoard/NameFoundAsAFlashEnds~a name found later is lost when the row's flash ends in the frame meant to show it (needs chromium)
board-list-check-once~./cmd/quotehub~web/board/static/app.js~s/^    if (attempt < 5) {$/    if (false) {/~TestBoard/Watchlist~the board gives up on a failed check that a watchlist was deleted (needs chromium)
outbox-stops-conflating~./hub~hub/client.go~s/^\tst\.pending = u$/\tif st.pending == nil {\n\t\tst.pending = u\n\t}/~~a newer quote no longer replaces the pending one: a slow client gets old prices
hub-seq-goes-back~./hub~hub/client.go~s/u\.Seq < st\.seq || //~~a connection can receive a lower seq than it has
cache-accepts-lower-seq~./store/memory~store/memory/cache.go~s/case !ok || q\.Seq > old\.Seq:/case !ok || q.Seq != old.Seq:/~~the memory cache takes a lower seq over a higher one
redis-cache-accepts-lower-seq~./store/redis~store/redis/cache_put.lua~s/if seq < cseq or (seq == cseq and fetched <= cfetched) then/if seq == cseq and fetched <= cfetched then/~TestCacheConformance~the Redis cache's fence takes a lower seq
redis-bus-delivers-unwatched~./store/redis~store/redis/bus.go~s/^\t_, err := b\.rdb\.Pipelined(ctx, func(p redis\.Pipeliner) error {$/\tb.deliver(quotes)\n&/~TestBusConformance~the Redis bus hands every publish to this node, watched or not
EOF
)

list=false
if [[ ${1:-} == -l ]]; then list=true; shift; fi
filter=${1:-}

root=$(git rev-parse --show-toplevel)
if $list; then
	while IFS='~' read -r name pkg file _ _ what; do
		[[ -z $filter || $name =~ $filter ]] && printf '%-30s %-28s %s\n' "$name" "$pkg" "$what"
	done <<<"$MUTANTS"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/quotehub-mutants.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
	tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$work"
echo "mutants: a copy of $root in $work"

# The unbroken tree must pass first, or every mutant would look killed.
declare -A baseline=()
while IFS='~' read -r name pkg _ _ run _; do
	[[ -n $filter && ! $name =~ $filter ]] && continue
	key="$pkg ${run:-all}"
	[[ -n ${baseline[$key]:-} ]] && continue
	baseline[$key]=1
	if ! (cd "$work" && $GO test -count=1 -vet=off -timeout "$TIMEOUT" ${run:+-run "$run"} "$pkg" </dev/null >"$work/test.log" 2>&1); then
		echo "mutants: the unbroken tree fails $pkg (${run:-all tests}); fix that first:"
		tail -20 "$work/test.log"
		exit 2
	fi
	echo "baseline ok  $pkg (${run:-all tests})"
done <<<"$MUTANTS"

killed=0 bad=0
while IFS='~' read -r name pkg file script run what; do
	[[ -n $filter && ! $name =~ $filter ]] && continue
	f="$work/$file"
	cp "$f" "$f.orig"
	sed -i -e "$script" "$f"
	start=$SECONDS
	if cmp -s "$f" "$f.orig"; then
		verdict=STALE
	elif ! (cd "$work" && $GO vet "$pkg" </dev/null >/dev/null 2>"$work/build.log"); then
		verdict=BROKEN
		sed 's/^/    /' "$work/build.log" | head -5
	elif (cd "$work" && $GO test -count=1 -vet=off -timeout "$TIMEOUT" ${run:+-run "$run"} "$pkg" </dev/null >"$work/test.log" 2>&1); then
		verdict=SURVIVED
	else
		verdict=killed
		# Show which test caught it.
		grep -m1 -E -- '^\s*--- FAIL' "$work/test.log" | sed 's/^ *--- FAIL: //; s/ (.*//' >"$work/caught"
		[[ -s $work/caught ]] || echo "no test failed: $(grep -m1 -E 'panic:|timed out|FAIL' "$work/test.log")" >"$work/caught"
	fi
	mv "$f.orig" "$f"
	line=$(printf '%-8s %-30s %-28s %3ds  %s' "$verdict" "$name" "$pkg" $((SECONDS - start)) "$what")
	[[ $verdict == killed ]] && line+=" [$(cat "$work/caught")]"
	echo "$line"
	if [[ $verdict == killed ]]; then killed=$((killed + 1)); else bad=$((bad + 1)); fi
done <<<"$MUTANTS"

echo "mutants: $killed killed, $bad not killed (of $((killed + bad)))"
[[ $bad -eq 0 && $killed -gt 0 ]]
