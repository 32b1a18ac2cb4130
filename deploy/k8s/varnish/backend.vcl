# Kubernetes: misses go to the API's Service (one ClusterIP; kube-proxy balances the pods).
backend replicas {
    .host = "flipkart-api";
    .port = "80";
    .connect_timeout = 2s;
    .first_byte_timeout = 35s;
    .between_bytes_timeout = 35s;
}

sub choose_backend {
    set req.backend_hint = replicas;
}
