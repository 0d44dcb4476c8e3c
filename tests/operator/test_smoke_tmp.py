from tests.operator.conftest import CRONJOBS, CONFIGMAPS, WRP, cronjob_body, policy_body, condition

async def test_smoke(operator):
    c = operator
    c.put(CRONJOBS, cronjob_body())
    c.put(WRP, policy_body(paused=True))
    await c.wait_for(lambda: condition(c.get(WRP, "default"), "Paused").get("status") == "True", 10)
    print(c.get(WRP, "default"))
    print(c.get(CRONJOBS, "tenrusl-retry")["spec"].get("suspend"))
    print(c.get(CONFIGMAPS, "default-policy"))
    print(c.events())
