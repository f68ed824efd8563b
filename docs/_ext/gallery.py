"""The gallery page's figures, generated from the demo report so the captions stay the report's.

docs/conf.py calls :func:`gallery_markdown` on ``reports/demo/report.md`` and the files in
``reports/demo/figures/`` and writes the result to ``docs/reports/gallery_figures.md``, which
docs/gallery.md includes. Every figure in the folder must appear in the report (the caption
comes from there); a figure the report does not show, or a report figure missing from the
folder, is an error, not a silent gap in the gallery.
"""

from __future__ import annotations

import re

SECTION = re.compile(r"^## (.+)$")
FIGURE = re.compile(r"^!\[([^\]]*)\]\(figures/([^)\s]+\.png)\)$")
CAPTION = re.compile(r"^\*(.+)\*$")


def report_figures(report_md: str) -> list[tuple[str, str, str]]:
    """(section, file name, caption) for every figure of the report, in the report's order.

    The section is the report's ``## `` heading above the figure; the caption is the italic
    line that follows the image, or the image's alt text when there is none.
    """
    lines = report_md.splitlines()
    section, found = "", []
    for i, line in enumerate(lines):
        if heading := SECTION.match(line):
            section = heading.group(1).strip()
        elif figure := FIGURE.match(line.strip()):
            following = next((x.strip() for x in lines[i + 1 :] if x.strip()), "")
            caption = CAPTION.match(following)
            text = caption.group(1) if caption else figure.group(1)
            found.append((section, figure.group(2), text.rstrip(".")))
    return found


def gallery_markdown(report_md: str, figure_names: list[str], image_dir: str) -> str:
    """MyST Markdown: one section per dataset, one captioned ``figure`` per demo figure.

    Parameters
    ----------
    report_md : str
        The text of reports/demo/report.md.
    figure_names : list of str
        The ``.png`` file names in reports/demo/figures/.
    image_dir : str
        Where the images are, relative to the page that includes the result.

    Raises
    ------
    ValueError
        When the report and the folder disagree (a figure on one side only).
    """
    figures = report_figures(report_md)
    shown = [name for _, name, _ in figures]
    missing = sorted(set(figure_names) - set(shown))
    absent = sorted(set(shown) - set(figure_names))
    if missing or absent:
        raise ValueError(
            f"reports/demo: the report and figures/ disagree: in figures/ but not in the "
            f"report: {missing}; in the report but not in figures/: {absent}. Regenerate "
            f"both with `make demo`."
        )
    out, section = [], None
    for where, name, caption in figures:
        if where != section:
            section = where
            out += [f"## {section}", ""]
        out += [
            f":::{{figure}} {image_dir}/{name}",
            f":alt: {caption}",
            ":width: 100%",
            "",
            f"{caption}.",
            ":::",
            "",
        ]
    return "\n".join(out)
