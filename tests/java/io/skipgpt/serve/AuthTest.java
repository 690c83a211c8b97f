package io.skipgpt.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** With an API key, every /v1 request needs it as a bearer token; /health stays open. */
class AuthTest {
    @Test
    void bearerTokenIsChecked() throws Exception {
        try (TestServer s = new TestServer(TestServer.settings(2, 64, 128, 64, 8, "sekrit-1"), null)) {
            String body = "{\"prompt\": \"hi\", \"max_tokens\": 2}";
            BadInputTest.assertError(s.post("/v1/completions", body), 401, null, "missing_api_key");
            BadInputTest.assertError(s.post("/v1/completions", body, "Authorization", "Bearer wrong"), 401, null,
                    "invalid_api_key");
            BadInputTest.assertError(s.post("/v1/completions", body, "Authorization", "Basic c2Vrcml0LTE="), 401, null,
                    "missing_api_key");
            BadInputTest.assertError(s.request("GET", "/v1/models"), 401, null, "missing_api_key");
            BadInputTest.assertError(s.request("GET", "/v1/nothing"), 401, null, "missing_api_key");
            assertEquals(200, s.post("/v1/completions", body, "Authorization", "Bearer sekrit-1").statusCode());
            assertEquals(200, s.request("GET", "/v1/models", "Authorization", "bearer sekrit-1").statusCode());
            assertEquals(200, s.request("GET", "/health").statusCode());
        }
    }
}
