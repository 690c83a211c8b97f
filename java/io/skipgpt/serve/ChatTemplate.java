package io.skipgpt.serve;

import java.util.List;

/** Turns chat messages into the prompt text a model was trained to continue as the assistant. */
interface ChatTemplate {
    /** One chat message; role is system, user or assistant. */
    record Message(String role, String content) {}

    /**
     * The prompt text, ending where the assistant's reply begins. An {@link IllegalArgumentException} says
     * why the conversation does not fit the template (its message goes back to the client).
     */
    String render(List<Message> messages);

    /** One line for /v1/models: which template this is. */
    String describe();

    /**
     * The plain format used when a model has no usable chat template: one {@code role: content} line per
     * message, then {@code assistant:} for the reply to continue. {@code why} says why it is used.
     */
    static ChatTemplate fallback(String why) {
        return new ChatTemplate() {
            @Override
            public String render(List<Message> messages) {
                StringBuilder b = new StringBuilder();
                for (Message m : messages) b.append(m.role()).append(": ").append(m.content()).append('\n');
                return b.append("assistant:").toString();
            }

            @Override
            public String describe() {
                return "fallback (" + why + "): one \"role: content\" line per message, then \"assistant:\"";
            }
        };
    }
}
