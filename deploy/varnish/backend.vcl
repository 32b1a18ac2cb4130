# Where misses go: nginx's internal server (deploy/nginx/default.conf, :8081), which
# balances the replicas and follows Docker's DNS as they come and go (this Varnish has no
# vmod_dynamic, and a backend name must resolve to one address when the VCL loads).
backend replicas {
    .host = "nginx";
    .port = "8081";
    .connect_timeout = 2s;
    .first_byte_timeout = 35s;
    .between_bytes_timeout = 35s;
    .probe = {
        .url = "/livez";
        .interval = 2s;
        .timeout = 1s;
        .window = 3;
        .threshold = 2;
    }
}

sub choose_backend {
    set req.backend_hint = replicas;
}
