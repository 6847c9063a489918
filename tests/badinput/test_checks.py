"""The checks behind the bad-input messages, called directly: encoder lengths, output paths, atomic streams,
single-class training data, damaged model folders."""

from __future__ import annotations

import json

import pytest

from frugaltext.data import load_data
from frugaltext.errors import ConfigError, DataFormatError, ModelLoadError
from frugaltext.fileio import atomic_open, check_output_dir, check_output_file, remove_if_no_files
from tests.badinput.conftest import toy_rows, write_jsonl


def _config(folder, **fields):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(fields), encoding="utf-8")
    return folder


def test_encoder_limit_counts_the_padding_offset(tmp_path):
    from frugaltext.models.encoders import check_max_length, max_sequence_length

    bert = _config(tmp_path / "bert", model_type="bert", max_position_embeddings=512, pad_token_id=0)
    roberta = _config(tmp_path / "roberta", model_type="roberta", max_position_embeddings=514, pad_token_id=1)
    mpnet = _config(tmp_path / "mpnet", model_type="mpnet", max_position_embeddings=514, pad_token_id=1)
    relative = _config(tmp_path / "rel", model_type="deberta-v2")
    assert [max_sequence_length(p) for p in (bert, roberta, mpnet, relative)] == [512, 512, 512, None]
    check_max_length(roberta, 512)
    with pytest.raises(ConfigError, match=r"max_length = 513 is larger than the 512 tokens the encoder"):
        check_max_length(roberta, 513, where="method 'bert'")
    check_max_length(relative, 100_000)  # no absolute limit: left to the model


def test_settings_check_uses_the_partition_length(tmp_path):
    from frugaltext.methods.bert import BertSettings
    from frugaltext.methods.tfidf import TfidfSettings
    from frugaltext.methods.topicbert import TopicBertSettings
    from frugaltext.models.encoders import check_settings_max_length

    enc = _config(tmp_path / "enc", model_type="bert", max_position_embeddings=64)
    check_settings_max_length(TopicBertSettings(model_name_or_path=str(enc), max_length=128, n_partitions=2))
    with pytest.raises(ConfigError, match="at most 128"):
        check_settings_max_length(TopicBertSettings(model_name_or_path=str(enc), max_length=256,
                                                    n_partitions=2))
    with pytest.raises(ConfigError, match="at most 64"):
        check_settings_max_length(BertSettings(model_name_or_path=str(enc), max_length=65))
    check_settings_max_length(TfidfSettings())  # no encoder: nothing to check


def test_output_checks_create_nothing(tmp_path):
    (tmp_path / "file").write_text("x", encoding="utf-8")
    (tmp_path / "dir").mkdir()
    deep = tmp_path / "new" / "deeper" / "p.jsonl"
    assert check_output_file(deep) == deep
    assert check_output_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    for bad, pattern in ((tmp_path / "dir", "is a directory"), (tmp_path / "file" / "x.json", "is a file")):
        with pytest.raises(ConfigError, match=pattern):
            check_output_file(bad)
    with pytest.raises(ConfigError, match="must end in .jsonl or .csv"):
        check_output_file(tmp_path / "p.txt", suffixes=(".jsonl", ".csv"))
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        check_output_dir(tmp_path / "file")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        check_output_dir(tmp_path / "file" / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"]


def test_atomic_open_removes_its_temporary_file_and_new_folders(tmp_path):
    target = tmp_path / "a" / "b" / "out.csv"
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as handle:
        handle.write("half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_open(target) as handle:
        handle.write("x\r\ny\n")
    assert target.read_bytes() == b"x\r\ny\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]


def test_remove_if_no_files_never_removes_a_file(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "full" / "sub").mkdir(parents=True)
    (tmp_path / "full" / "sub" / "checkpoint").write_text("keep", encoding="utf-8")
    assert remove_if_no_files(tmp_path / "empty") and not (tmp_path / "empty").exists()
    assert not remove_if_no_files(tmp_path / "full") and (tmp_path / "full" / "sub" / "checkpoint").is_file()


def test_single_class_training_split_is_refused_for_training_only(tmp_path):
    path = write_jsonl(tmp_path / "one.jsonl", toy_rows(4, labels=("earn",)))
    with pytest.raises(DataFormatError, match=r"one.jsonl: every one of the 4 training documents has the "
                                              r"label 'earn'"):
        load_data(path, min_train_labels=2)
    assert load_data(path).label_names == ("earn",)  # evaluating a one-class file stays possible
    one_doc = write_jsonl(tmp_path / "x.jsonl", toy_rows(1, labels=("earn",)))
    single = load_data(one_doc, carve_validation=False)
    assert len(single.train) == 1 and len(single.validation) == 0


def test_tfidf_fit_refuses_one_class(tmp_path):
    from frugaltext.cost.meter import CostMeter, CostSettings
    from frugaltext.methods.tfidf import TfidfLinearSVM
    from tests.helpers import make_data

    data = make_data(["oil prices", "crude oil"], ["crude", "crude"])
    with pytest.raises(DataFormatError, match=r"single label \['crude'\]"):
        TfidfLinearSVM().fit(data, CostMeter(CostSettings(measure_energy=False)))


def test_load_model_names_the_damaged_folder(tmp_path, trained_model):
    import shutil

    from frugaltext.methods.base import load_model

    model = tmp_path / "m"
    shutil.copytree(trained_model, model)
    (model / "tfidf.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(ModelLoadError, match=r"tfidf.safetensors: cannot read the weights .*train the model "
                                             r"again or copy the folder again"):
        load_model(model)
