"""The element set of an implementation entry (实施清单要素, standards §1.4): vocabularies and labels.

One place names every element a person can record on an entry, its Chinese label and, for coded
elements, the code list. The staff form, the public page, the history, the review diff, the quality
check and the exports all read their labels from here, so a field is called the same everywhere.

"Not recorded" is a state of its own: an element that nobody recorded is ``None`` (or an empty list),
shown to staff as 未填报 and to citizens as 信息待补充; it is never replaced by a plausible default.
"""

from __future__ import annotations

NOT_RECORDED = "未填报"  # what staff pages, the history and the diff show for a missing element
MISSING_PUBLIC = "信息待补充"  # what the public page shows for a missing element

# 实施主体性质.
SUBJECT_NATURES: dict[str, str] = {
    "statutory": "法定机关",
    "authorised": "法律法规授权组织",
    "entrusted": "受委托组织",
}

# 权力来源.
POWER_SOURCES: dict[str, str] = {
    "own": "法定本级行使",
    "delegated": "上级下放",
    "authorised": "上级授权",
    "entrusted_peer": "同级委托",
    "entrusted_upper": "上级委托",
    "other": "其他",
}

# 业务办理项: the kind of business an entry handles for the same basic item.
HANDLE_ITEMS: dict[str, str] = {
    "new": "新办",
    "change": "变更",
    "renew": "延续",
    "cancel": "注销",
    "reissue": "补证（换证）",
    "other": "其他",
}

# 服务对象 (the 申请人类型 codes of the national 好差评 interface, standards §1.3).
SERVICE_OBJECTS: dict[str, str] = {
    "1": "自然人",
    "2": "企业法人",
    "3": "事业法人",
    "4": "社会组织法人",
    "5": "非法人企业",
    "6": "行政机关",
    "9": "其他组织",
}

# 办理形式 (several may apply). Jiangsu's 不见面 guide counts every one except the window as a way to
# apply without meeting the authority (standards §2).
HANDLE_FORMS: dict[str, str] = {
    "window": "窗口办理",
    "online": "网上办理",
    "kiosk": "自助终端",
    "post": "快递申请（邮寄）",
    "proxy": "全程代办",
}

# 不见面审批 class, derived by the rule (catalog/norules.py), never entered.
NO_CONTACT_CLASSES: dict[str, str] = {
    "full": "全程不见面",
    "partial": "部分不见面",
    "none": "否",
}

# 网上办理深度 Ⅰ–Ⅳ, derived from the depth codes and the visits (standards §2).
DEPTH_LEVELS: dict[int, str] = {
    1: "Ⅰ级（网上可查办事指南）",
    2: "Ⅱ级（表格下载、在线咨询预约）",
    3: "Ⅲ级（网上预审或受理）",
    4: "Ⅳ级（全程网办）",
}

# 通办范围.
HANDLE_AREAS: dict[str, str] = {
    "local": "本级办理",
    "district": "全区通办",
    "city": "全市通办",
    "province": "全省通办",
    "national": "全国通办",
}

# 审批结果类型.
RESULT_TYPES: dict[str, str] = {
    "licence": "证照",
    "document": "批文",
    "certificate": "证明",
    "other": "其他",
}

# 申请材料 来源渠道 and 原件/复印件.
MATERIAL_SOURCES: dict[str, str] = {
    "applicant": "申请人自备",
    "government": "政府部门核发",
    "intermediary": "中介机构出具",
    "other": "其他",
}
MATERIAL_ORIGINALS: dict[str, str] = {
    "original": "原件",
    "copy": "复印件",
    "both": "原件和复印件",
}

# Chinese labels of every element of an entry (column name -> label). Child lists use the name of
# their list in the entry snapshot ("materials", "fees", "steps", "faqs").
FIELD_LABELS: dict[str, str] = {
    # identity and the 三级四同 fields inherited from the basic item
    "name": "事项名称",
    "task_type": "事项类型",
    "legal_basis": "设定依据",
    "catalog_code": "基本编码",
    "task_code": "实施编码",
    "level": "行使层级",
    "department_id": "实施主体",
    "division_code": "行政区划",
    "status": "状态",
    "version": "版本",
    "applicable": "本地适用",
    "not_applicable_reason": "不适用原因",
    # who
    "subject_nature": "实施主体性质",
    "entrusted_department": "委托部门",
    "joint_bodies": "联办机构",
    "power_source": "权力来源",
    "handle_item": "业务办理项",
    "service_objects": "服务对象",
    # what to bring / conditions
    "accept_conditions": "受理条件",
    "materials": "申请材料",
    "steps": "办理流程",
    "special_procedure": "特别程序",
    # how long
    "anticipate_days": "法定办结时限",
    "anticipate_unit": "法定时限单位",
    "anticipate_explain": "法定时限说明",
    "promise_days": "承诺办结时限",
    "promise_unit": "承诺时限单位",
    "promise_explain": "承诺时限说明",
    "project_type": "办件类型",
    # how much
    "charges": "是否收费",
    "fees": "收费项目",
    # where and how
    "handle_forms": "办理形式",
    "visits": "到办事现场次数",
    "visits_reason": "需到现场的原因",
    "meeting_step": "需见面的环节",
    "tolerant_acceptance": "容缺受理",
    "in_hall": "是否进驻政务大厅",
    "handle_area": "通办范围",
    "quantity_limit": "数量限制",
    "window_address": "办理地点",
    "opening_hours": "办理时间",
    # online
    "online_depth": "网上办理深度（环节）",
    "depth_level": "网上办理深度",
    "online_url": "网上办理地址",
    "mobile_url": "移动端办理地址",
    "pay_online": "是否支持网上支付",
    "no_contact": "不见面审批",
    "no_contact_class": "不见面审批类别",
    # what you get
    "result_type": "审批结果类型",
    "result_name": "审批结果名称",
    "result_sample": "审批结果样本",
    "result_delivery": "结果送达方式",
    # where to ask and complain
    "phone": "咨询电话",
    "complaint_phone": "监督投诉电话",
    "review_channel": "行政复议途径",
    "litigation_channel": "行政诉讼途径",
    "faqs": "常见问题",
    "keywords": "检索关键词",
    # timestamps
    "created_at": "创建时间",
    "updated_at": "更新时间",
    "published_at": "发布时间",
}

# Labels of the fields of the child rows.
MATERIAL_LABELS: dict[str, str] = {
    "name": "材料名称",
    "form": "材料形式",
    "required": "是否必要",
    "copies": "份数",
    "source_channel": "来源渠道",
    "original": "原件/复印件",
    "accept_standard": "受理标准",
    "basis": "填报依据",
    "blank_form": "空白表格",
    "sample": "示例样表",
    "licence_type_code": "可替代的电子证照类型",
    "notes": "备注",
}
FEE_LABELS: dict[str, str] = {
    "name": "收费项目名称",
    "amount_fen": "收费标准",
    "basis": "收费依据",
    "reducible": "是否允许减免",
}
STEP_LABELS: dict[str, str] = {
    "name": "办理环节",
    "post": "承办岗位",
    "days": "环节时限",
    "unit": "时限单位",
}
FAQ_LABELS: dict[str, str] = {"question": "问题", "answer": "解答"}
