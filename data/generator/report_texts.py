"""What residents and workers write about each category of issue, after the place of it."""

from __future__ import annotations

# What residents and workers write, after the place ("太行街东段" + "17号路灯不亮..."), by
# category and kind of place. {label} is the facility concerned.
TAILS: dict[tuple[str, str], tuple[str, ...]] = {
    ("streetlight_out", "facility"): ("{label}不亮，夜间行人出行不便", "{label}夜间闪烁，时亮时灭",
                                      "{label}白天常亮", "{label}灯杆倾斜，灯不亮"),
    ("cover_damaged", "facility"): ("{label}破损", "{label}缺失，存在安全隐患",
                                    "{label}松动，车辆经过有响声", "{label}下沉，与路面不平"),
    ("garbage", "facility"): ("{label}满溢，垃圾堆积未及时清运", "{label}周边散落垃圾，气味难闻",
                              "{label}旁堆放建筑垃圾"),
    ("garbage", "yard"): ("院内垃圾堆积无人清理", "院内堆放建筑垃圾", "楼道口生活垃圾堆积"),
    ("parking_chaos", "street"): ("车辆乱停乱放，影响通行", "机动车占用人行道停放",
                                  "车辆占道停放，造成拥堵", "电动车、三轮车乱停放"),
    ("parking_chaos", "yard"): ("院内车辆乱停，消防通道被占", "院内私装地锁占用车位",
                                "外来车辆进院乱停放"),
    ("heating_failure", "room"): ("暖气不热，室温不足16度", "暖气片漏水", "供暖管道漏水",
                                  "暖气不热，已持续多日", "暖气时冷时热"),
    ("elevator_failure", "unit"): ("电梯故障停运", "电梯困人，请求救援", "电梯运行有异响",
                                   "电梯门无法正常关闭"),
    ("sewer_blocked", "facility"): ("污水井堵塞，污水外溢", "污水井冒水，气味难闻",
                                    "{label}周边污水漫溢"),
    ("sewer_blocked", "unit"): ("下水道堵塞，污水外溢", "化粪池满溢", "下水管道堵塞，一楼住户家中返水"),
    ("noise", "room"): ("夜间装修噪音扰民", "楼上住户深夜噪音", "住户饲养犬只夜间吠叫扰民"),
    ("noise", "square"): ("广场舞音响声音过大", "晚间健身活动音响扰民"),
    ("noise", "street"): ("商铺高音喇叭招揽顾客，噪音扰民", "夜间烧烤摊噪音扰民", "夜间施工噪音扰民"),
    ("neighbour_dispute", "unit"): ("上下楼住户因漏水发生纠纷", "邻居因楼道堆物发生争执",
                                    "住户因停车位发生纠纷", "邻里因宠物犬发生矛盾"),
    ("illegal_construction", "side"): ("私搭乱建彩钢房", "一楼住户私自扩建小院",
                                       "占用公共绿地搭建棚子", "违规搭建储物间"),
    ("road_damaged", "street"): ("路面坑洼破损", "路面塌陷", "人行道地砖破损松动", "路沿石损坏"),
    ("road_damaged", "yard"): ("院内路面坑洼破损", "院内路面积水，无法通行"),
    ("other", "side"): ("楼道堆放杂物", "电动车飞线充电，存在安全隐患", "外墙墙皮脱落",
                        "空中线缆杂乱下垂"),
    ("greenery", "street"): ("行道树倒伏，阻碍通行", "树枝断裂悬挂，存在安全隐患",
                             "绿化带被踩踏损毁", "行道树枯死未补植"),
    ("greenery", "square"): ("绿地被毁，私自种菜", "绿篱多年无人修剪", "花坛损毁，树木缺株"),
    ("other", "street"): ("流浪犬出没", "树木枝杈遮挡，存在安全隐患", "广告牌松动，存在安全隐患",
                          "占道经营"),
}
