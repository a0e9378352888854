import { describe, expect, it } from "vitest";
import { decodeEncodedWords, parseEml } from "./eml.js";

describe("parseEml", () => {
  it("unfolds headers and decodes a quoted-printable body", () => {
    const raw = [
      "To: a@x.test",
      "Subject: =?UTF-8?Q?Caf=C3=A9?=",
      " =?UTF-8?B?IG9r?=",
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: quoted-printable",
      "",
      "soft=",
      "break =3D equals",
      "",
    ].join("\r\n");
    const eml = parseEml(raw);
    expect(eml.subject).toBe("Café ok");
    expect(eml.to).toBe("a@x.test");
    expect(eml.text).toBe("softbreak = equals");
  });

  it("takes the text/plain part of a multipart message", () => {
    const raw = [
      'Content-Type: multipart/alternative; boundary="b1"',
      "",
      "--b1",
      "Content-Type: text/plain",
      "Content-Transfer-Encoding: base64",
      "",
      Buffer.from("plain text").toString("base64"),
      "--b1",
      "Content-Type: text/html",
      "",
      "<p>html</p>",
      "--b1--",
      "",
    ].join("\r\n");
    expect(parseEml(raw).text).toBe("plain text");
  });

  it("leaves text without encoded words alone", () => {
    expect(decodeEncodedWords("plain = text ?")).toBe("plain = text ?");
  });
});
