# The HTTP cache between nginx and the replicas (docs/decisions.md, "The HTTP cache").
# Varnish 7.1 (Debian) and the official varnish:7 image; needs varnish-modules (xkey, var),
# which both ship. The backend (where misses go) is in backend.vcl, next to this file.
vcl 4.1;

import std;
import var;
import xkey;

include "backend.vcl";

# Who may purge: the app's replicas, on the private networks a stack runs on. nginx never
# forwards a PURGE here (it sends only anonymous GET and HEAD), so a client cannot either.
acl purgers {
    "127.0.0.1";
    "::1";
    "10.0.0.0"/8;
    "172.16.0.0"/12;
    "192.168.0.0"/16;
}

sub vcl_init {
    # Counts purges since start. A fetch notes it when it starts; if it changed by the time
    # the answer arrives, a write may have committed (and purged) after the app read its
    # rows, so that answer is delivered once but never stored (vcl_backend_response).
    var.global_set("purges", "0");
}

sub vcl_recv {
    call choose_backend;  # backend.vcl
    # varnishd appended its client (the proxy in front) to X-Forwarded-For; take it off, so
    # the app sees what the front proxy sent and PROXY_HOPS counts the front proxy only.
    if (req.http.X-Forwarded-For ~ ",") {
        set req.http.X-Forwarded-For = regsub(req.http.X-Forwarded-For, ",\s*[^,]*$", "");
    } else {
        unset req.http.X-Forwarded-For;
    }
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        # The counter moves first: a fetch under way now will not be stored.
        var.global_set("purges", "" + (std.integer(var.global_get("purges"), 0) + 1));
        set req.http.x-purged = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Purged " + req.http.x-purged));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Personal requests are never answered from the cache, whatever the path.
    if (req.http.Authorization || req.http.Cookie) {
        return (pass);
    }
    # Only the public catalog: product details, lists and search, categories, and `/`.
    if (req.url !~ "^/(\?.*)?$" && req.url !~ "^/api/v1/(products|categories)(/[0-9]+)?/?(\?.*)?$") {
        return (pass);
    }
    # ?a=1&b=2 and ?b=2&a=1 are one object (repeated parameters keep their order: the app
    # refuses most repeats with a 400, which is never stored).
    set req.url = std.querysort(req.url);
    return (hash);
}

sub vcl_hash {
    hash_data(req.url);
    # Host is not part of the object: every host name of this API serves the same catalog.
    return (lookup);
}

sub vcl_backend_fetch {
    var.set("purges_at_fetch", var.global_get("purges"));
}

sub vcl_backend_response {
    if (var.get("purges_at_fetch") != var.global_get("purges")) {
        set beresp.http.x-edge-skipped = "purge during fetch";
        set beresp.uncacheable = true;
        set beresp.ttl = 0s;
        return (deliver);
    }
    # Stored: a 200 the app marked public (Cache-Control: public, with s-maxage as its TTL).
    # Never an error, never anything personal (the builtin VCL also refuses Set-Cookie).
    if (beresp.status != 200 || beresp.http.Cache-Control !~ "\bpublic\b") {
        set beresp.uncacheable = true;
        set beresp.ttl = 120s;  # remember "not cacheable" so such URLs are not coalesced
        return (deliver);
    }
    # After the TTL an object is not served stale (no grace) but kept an hour to be
    # revalidated: Varnish asks with If-None-Match and the app answers 304 from Redis.
    set beresp.grace = 0s;
    set beresp.keep = 1h;
    if (beresp.http.Content-Type ~ "json") {
        set beresp.do_gzip = true;  # stored once compressed; Varnish gunzips for clients
    }
}

sub vcl_deliver {
    # The surrogate keys are for this cache only. s-maxage is for this cache too: a shared
    # cache further out cannot be purged by the app, so it must revalidate (max-age=0).
    unset resp.http.xkey;
    unset resp.http.x-edge-skipped;
    if (resp.http.Cache-Control) {
        set resp.http.Cache-Control = regsub(resp.http.Cache-Control, ",\s*s-maxage=[0-9]+", "");
    }
    if (obj.hits > 0) {
        set resp.http.X-Edge = "HIT";
    } else {
        set resp.http.X-Edge = "MISS";
    }
    unset resp.http.Via;
    unset resp.http.X-Varnish;
}

sub vcl_backend_error {
    # Varnish could not get an answer from the replicas: a 502 (Bad Gateway), which nginx
    # answers by asking the replicas itself. The app's own 503 (its database is down) stays
    # a 503 and is passed on: asking again would only double the load on the database.
    if (beresp.status == 503) {
        set beresp.status = 502;
        set beresp.reason = "Bad Gateway";
    }
}
