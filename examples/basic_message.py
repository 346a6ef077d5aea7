"""One request, one reply: ``MessagesRequestBody`` (or the builder) and ``create_a_message``.

Run: ``python examples/basic_message.py``. Offline against FakeClaude unless
``ANTHROPIC_API_KEY`` is set (then the real API answers).
"""

from __future__ import annotations

from _offline import MODEL, connect

from clust.messages import Message, MessagesRequestBody, MessagesRequestBuilder
from clust.testing import Reply


def main() -> None:
    with connect(
        Reply.text("Hello! I'm Claude. How can I help you today?"),
        Reply.text("Paris."),
    ) as (client, _fake):
        # The body: every parameter is validated here, before anything is sent.
        body = MessagesRequestBody(
            model=MODEL,
            max_tokens=1024,
            messages=[Message.user("Hello, Claude")],
        )
        response = client.create_a_message(body)
        print(f"> Hello, Claude\n{response.text()}")
        print(
            f"  [id={response.id}, stop_reason={response.stop_reason}, "
            f"tokens in/out={response.usage.input_tokens}/{response.usage.output_tokens}, "
            f"request-id={response.request_id}]"
        )

        # The same kind of request with the builder, the seed crate's style.
        body = (
            MessagesRequestBuilder(MODEL)
            .messages([Message.user("What is the capital of France? One word.")])
            .max_tokens(16)
            .temperature(0.0)
            .build()
        )
        response = client.create_a_message(body)
        print(f"> What is the capital of France? One word.\n{response.text()}")


if __name__ == "__main__":
    main()
