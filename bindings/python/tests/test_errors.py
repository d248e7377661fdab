import grey
from grey import capi, errors


def test_one_subclass_per_status():
    statuses = {getattr(capi, n) for n in dir(capi) if n.startswith("GREY_ERROR_")}
    classes = [getattr(grey, n) for n in errors.__all__ if isinstance(getattr(grey, n, None), type)]
    by_status = {cls.status: cls for cls in classes if cls is not grey.Error}
    assert set(by_status) == statuses, "every grey_status needs its exception class"
    for status, cls in by_status.items():
        err = errors.from_status(status, "detail")
        assert type(err) is cls and isinstance(err, grey.Error) and err.status == status and str(err) == "detail"


def test_unknown_status_gives_the_base_class():
    err = errors.from_status(0x1234, "future status")
    assert type(err) is grey.Error and err.status == 0x1234
