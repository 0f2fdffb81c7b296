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
