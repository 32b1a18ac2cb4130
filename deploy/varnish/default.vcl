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

# Purge marks: what makes a write that lands while an answer is being fetched or stored
# safe (docs/decisions.md, "The race"). Each PURGE first sets, to its own request id, the
# mark of every bucket its keys fall in and the mark "any"; then it scans. A bucket is a
# product detail's last digit (p0-p9), "products" (lists and search: any purge of a list,
# product or field key marks it) or "categories"; an answer with any other key is in
# "any". A fetch notes its bucket's mark when it starts; the mark changing later means a
# write on its bucket may have committed after the app read its rows:
#   - before the answer arrived: it is delivered once, never stored (vcl_backend_response);
#   - after that check but before the object was indexed, where the purge's scan cannot
#     find it: the request that fetched it drops it once it is (vcl_deliver), and until
#     then, a hit on it asks the app instead (vcl_hit).
# Marks are request ids, not counts: two purges at once cannot leave one looking unchanged.
sub vcl_init {
    # Every mark starts set: an unset one would read as NULL, which compares unlike itself.
    # Globals outlive a VCL (vmod_var), so loading this VCL again resets them: to a value
    # no mark has had ("0" could bring back the value a fetch under way noted at start).
    var.global_set("purge:any", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:products", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:categories", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:p0", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:p1", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:p2", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:p3", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:p4", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:p5", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:p6", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:p7", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:p8", "vcl-" + std.time2real(now, 0));
    var.global_set("purge:p9", "vcl-" + std.time2real(now, 0));
    # How long after its store an object whose bucket was purged meanwhile is not served
    # (vcl_hit): the margin for the fetching request's own look, which follows the store by
    # microseconds unless a thread is descheduled. Seconds; a test may raise it.
    var.global_set("store-check-margin", "0.1");
}

sub edge_mark_purge {
    var.global_set("purge:any", req.xid);
    # A list page carries `products`, the keys of the products on it, and field keys.
    if (req.http.xkey-purge ~ "(^|\s)(products|by-[a-z]+|p[0-9]+)(\s|$)") {
        var.global_set("purge:products", req.xid);
    }
    if (req.http.xkey-purge ~ "(^|\s)categories(\s|$)") {
        var.global_set("purge:categories", req.xid);
    }
    if (req.http.xkey-purge ~ "(^|\s)p[0-9]*0(\s|$)") { var.global_set("purge:p0", req.xid); }
    if (req.http.xkey-purge ~ "(^|\s)p[0-9]*1(\s|$)") { var.global_set("purge:p1", req.xid); }
    if (req.http.xkey-purge ~ "(^|\s)p[0-9]*2(\s|$)") { var.global_set("purge:p2", req.xid); }
    if (req.http.xkey-purge ~ "(^|\s)p[0-9]*3(\s|$)") { var.global_set("purge:p3", req.xid); }
    if (req.http.xkey-purge ~ "(^|\s)p[0-9]*4(\s|$)") { var.global_set("purge:p4", req.xid); }
    if (req.http.xkey-purge ~ "(^|\s)p[0-9]*5(\s|$)") { var.global_set("purge:p5", req.xid); }
    if (req.http.xkey-purge ~ "(^|\s)p[0-9]*6(\s|$)") { var.global_set("purge:p6", req.xid); }
    if (req.http.xkey-purge ~ "(^|\s)p[0-9]*7(\s|$)") { var.global_set("purge:p7", req.xid); }
    if (req.http.xkey-purge ~ "(^|\s)p[0-9]*8(\s|$)") { var.global_set("purge:p8", req.xid); }
    if (req.http.xkey-purge ~ "(^|\s)p[0-9]*9(\s|$)") { var.global_set("purge:p9", req.xid); }
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
        call edge_mark_purge;  # first the marks, then the scan
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
    # Only the public catalog: product details, lists and search, suggestions, categories,
    # and `/`.
    if (req.url !~ "^/(\?.*)?$"
            && req.url !~ "^/api/v1/((products|categories)(/[0-9]+)?|search/suggest)/?(\?.*)?$") {
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

sub vcl_hit {
    # Its bucket was purged since its fetch began, and it was stored moments ago: the request
    # that fetched it may not have looked again yet (vcl_deliver), so this may be an answer
    # a purge missed. Ask the app, without storing. Past the margin, a purge that left the
    # object in place did not concern it.
    if (obj.http.x-purge-mark != var.global_get("purge:" + obj.http.x-purge-bucket)
            && std.real(obj.http.x-stored-at, 0)
                + std.real(var.global_get("store-check-margin"), 0.1) > std.time2real(now, 0)) {
        return (pass);
    }
}

sub vcl_backend_fetch {
    # The bucket this URL's answer should fall in, and the marks as the fetch starts.
    if (bereq.url ~ "^/api/v1/products/[0-9]+/?(\?|$)") {
        var.set("bucket", regsub(bereq.url, "^/api/v1/products/[0-9]*([0-9])/?(\?.*)?$", "p\1"));
    } elsif (bereq.url ~ "^/api/v1/(products|search/suggest)") {
        var.set("bucket", "products");
    } elsif (bereq.url ~ "^/api/v1/categories") {
        var.set("bucket", "categories");
    } else {
        var.set("bucket", "any");
    }
    var.set("mark", var.global_get("purge:" + var.get("bucket")));
    var.set("mark:any", var.global_get("purge:any"));
}

sub vcl_backend_response {
    # The answer's bucket is that of its own surrogate key (a revalidated object's keys
    # still hold its old object key: dropped here, a new one is added below). One that is
    # not the URL's (several keys, an unknown one) is held to the mark of "any".
    set beresp.http.xkey = regsuball(beresp.http.xkey, "\s*x-obj-[0-9]+", "");
    if (beresp.http.xkey ~ "^\s*p[0-9]+\s*$") {
        set beresp.http.x-purge-bucket = regsub(beresp.http.xkey, "^\s*p[0-9]*([0-9])\s*$", "p\1");
    } elsif (beresp.http.xkey ~ "(^|\s)products(\s|$)") {
        set beresp.http.x-purge-bucket = "products";
    } elsif (beresp.http.xkey ~ "^\s*categories\s*$") {
        set beresp.http.x-purge-bucket = "categories";
    } else {
        set beresp.http.x-purge-bucket = "any";
    }
    if (beresp.http.x-purge-bucket == var.get("bucket")) {
        set beresp.http.x-purge-mark = var.get("mark");
    } else {
        set beresp.http.x-purge-bucket = "any";
        set beresp.http.x-purge-mark = var.get("mark:any");
    }
    if (beresp.http.x-purge-mark != var.global_get("purge:" + beresp.http.x-purge-bucket)) {
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
    # The mark check above runs before the object is indexed, and a purge whose scan runs
    # in between cannot find it; so the object keeps its bucket and mark (vcl_hit and
    # vcl_deliver look again) and a key of its own to be dropped by.
    set beresp.http.x-edge-object = "x-obj-" + bereq.xid;
    set beresp.http.xkey = beresp.http.xkey + " " + beresp.http.x-edge-object;
    set beresp.http.x-stored-at = std.time2real(now, 0);
    if (beresp.http.Content-Type ~ "json") {
        set beresp.do_gzip = true;  # stored once compressed; Varnish gunzips for clients
    }
}

sub vcl_deliver {
    # The request that fetched and stored this object, now that it is indexed: if a purge
    # came after the fetch's check, its scan may have run before the object could be
    # found. Drop the object (by its own key); this answer is still right for this request,
    # which was made before that write returned.
    if (obj.hits == 0 && resp.http.x-edge-object) {
        if (resp.http.x-purge-mark != var.global_get("purge:" + resp.http.x-purge-bucket)) {
            std.log("edge: dropped " + xkey.purge(resp.http.x-edge-object) + " raced by a purge");
        }
        if (std.real(resp.http.x-stored-at, 0)
                + std.real(var.global_get("store-check-margin"), 0.1) < std.time2real(now, 0)) {
            std.log("edge: the look after storing came later than store-check-margin");
        }
    }
    # The surrogate keys are for this cache only. s-maxage is for this cache too: a shared
    # cache further out cannot be purged by the app, so it must revalidate (max-age=0).
    unset resp.http.xkey;
    unset resp.http.x-edge-skipped;
    unset resp.http.x-edge-object;
    unset resp.http.x-purge-bucket;
    unset resp.http.x-purge-mark;
    unset resp.http.x-stored-at;
    if (resp.http.Cache-Control) {
        set resp.http.Cache-Control = regsub(resp.http.Cache-Control, ",\s*s-maxage=[0-9]+", "");
    }
    if (obj.hits > 0) {
        set resp.http.X-Edge = "HIT";
    } else {
        set resp.http.X-Edge = "MISS";
    }
    # A stored answer carries the X-Request-ID of the request that fetched it: answer with
    # this request's (nginx always sends one), so the id is the same on every hop's line.
    if (req.http.X-Request-ID) {
        set resp.http.X-Request-ID = req.http.X-Request-ID;
    } elsif (obj.hits > 0) {
        unset resp.http.X-Request-ID;
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
