"""Every relative link of the README, the docs and the configs README names a
file of the checkout (pages move: docs/model_zoo_demo.md came from the configs
README, and its links had to change with it)."""
import glob
import os.path as osp
import re

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGES = sorted(
    osp.relpath(p, REPO) for pattern in ('README.md', 'docs/*.md', 'docs/results/*.md',
                                         'configs/ifr/*.md')
    for p in glob.glob(osp.join(REPO, pattern)))
LINK = re.compile(r'\]\(([^)\s]+)\)')


def relative_links(text):
    """The relative targets of a page's Markdown links, without anchors."""
    targets = (m.group(1) for m in LINK.finditer(text))
    return [t.split('#')[0] for t in targets
            if not t.startswith(('http://', 'https://', 'mailto:', '#'))]


def test_relative_links_are_found_and_web_links_skipped():
    text = '[a](docs/x.md#s) [b](https://x.org/y) [c](#top) [d](../z.py)'
    assert relative_links(text) == ['docs/x.md', '../z.py']


@pytest.mark.parametrize('page', PAGES)
def test_every_relative_link_names_a_file(page):
    with open(osp.join(REPO, page)) as f:
        text = f.read()
    missing = [t for t in relative_links(text)
               if not osp.exists(osp.normpath(osp.join(REPO, osp.dirname(page), t)))]
    assert not missing, f'{page} links to missing files: {missing}'
