import pytest

from tryalloc import Config, ConfigError, Kernel


@pytest.mark.parametrize("options, needle", [
    (dict(nr_cpus=0), "nr_cpus"),
    (dict(nr_cpus=-1), "nr_cpus"),
    (dict(nr_cpus=True), "nr_cpus"),
    (dict(smp=False, nr_cpus=2), "uniprocessor"),
    (dict(preempt_rt="yes"), "preempt_rt"),
    (dict(detectors={"lockdepp": "raise"}), "lockdepp"),
    (dict(detectors={"lockdep": "loud"}), "loud"),
    (dict(bogus=1), "bogus"),
    (dict(pageblock_order=11), "pageblock_order"),
    (dict(pages_per_node=100), "pages_per_node"),
    (dict(nr_nodes=3, nr_cpus=2), "nr_nodes"),
])
def test_bad_configuration_is_named(options, needle):
    with pytest.raises(ConfigError, match=needle):
        Kernel(**options)


def test_config_is_data_and_copies():
    base = Config()
    rt = base.with_(preempt_rt=True)
    assert not base.preempt_rt and rt.preempt_rt
    assert Kernel(rt).config.preempt_rt
    assert Config.make(nr_cpus=1, smp=False).smp is False


def test_the_pageblock_order_follows_a_small_max_order_unless_given():
    """The kernel's pageblock_order is min(HPAGE_PMD_ORDER, MAX_PAGE_ORDER): a tiny machine needs one setting."""
    k = Kernel(pages_per_node=64, max_order=4)
    assert k.config.pageblock_order == 4 and k.zones[0].pageblock_order == 4
    assert Config().pageblock_order == 9
    assert Config(max_order=10, pageblock_order=5).pageblock_order == 5
    assert Config().with_(max_order=3).pageblock_order == 3
    with pytest.raises(ConfigError, match="pageblock_order=5 exceeds max_order=4"):
        Config(max_order=4, pageblock_order=5)


@pytest.mark.levels(since="6.15")
def test_the_last_level_runs_as_a_release_6_15_by_default_and_refuses_an_unknown_one():
    from tryalloc.series.rules import RELEASES

    assert Config().release == "6.15" and Kernel().config.release == "6.15"
    assert [Kernel(release=r).config.release for r in RELEASES] == list(RELEASES)
    with pytest.raises(ConfigError, match=r"unknown release '6\.17'; known: 6\.15-rc1, 6\.15, 6\.16"):
        Kernel(release="6.17")


@pytest.mark.levels(until="6.15")
def test_before_the_last_level_there_is_no_release_to_choose():
    with pytest.raises(ConfigError, match="unknown configuration option 'release'"):
        Kernel(release="6.15")
